"""Database sources and sinks: SQLite always, PostgreSQL where it runs (and it must run under CI)."""

import datetime as dt
import json
import os
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tabsynth.io.sql import check_source, parse_source, read_source
from tabsynth.privacy.ledger import Ledger

POSTGRES = os.environ.get("TABSYNTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
WARDS = ["cardiology", "oncology", "surgery", "icu"]


def patients_table(name: str, *, aware: bool, schema: str | None = None) -> sa.Table:
    """A patient-like table: integers with and without NULLs, floats, NUMERIC, text categories, dates, booleans."""
    return sa.Table(
        name, sa.MetaData(), sa.Column("patient_id", sa.Integer, primary_key=True),
        sa.Column("age", sa.Integer, nullable=False), sa.Column("visits", sa.Integer),
        sa.Column("weight", sa.Float), sa.Column("bill", sa.Numeric(10, 2)), sa.Column("ward", sa.String(20)),
        sa.Column("admitted", sa.Date), sa.Column("seen", sa.DateTime(timezone=aware)),
        sa.Column("smoker", sa.Boolean), sa.Column("discharged", sa.Boolean, nullable=False), schema=schema)


def patient_rows(n: int, aware: bool) -> list[dict]:
    rng = np.random.default_rng(5)
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC if aware else None)
    return [{
        "patient_id": 1000 + i, "age": int(rng.integers(18, 95)),
        "visits": None if rng.random() < 0.15 else int(rng.integers(0, 12)),
        "weight": round(float(rng.normal(75, 12)), 1), "bill": round(float(rng.gamma(2, 300)), 2),
        "ward": str(rng.choice(WARDS)), "admitted": (start + dt.timedelta(days=int(rng.integers(0, 365)))).date(),
        "seen": start + dt.timedelta(minutes=int(rng.integers(0, 500_000))),
        "smoker": None if rng.random() < 0.1 else bool(rng.random() < 0.3), "discharged": bool(rng.random() < 0.8),
    } for i in range(n)]


def create_patients(engine: sa.Engine, name: str, *, n: int = 200, aware: bool = False) -> None:
    table = patients_table(name, aware=aware)
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert(), patient_rows(n, aware))


def column_types(engine: sa.Engine, name: str, schema: str | None = None) -> dict[str, str]:
    return {c["name"]: c["type"].compile(dialect=engine.dialect)
            for c in sa.inspect(engine).get_columns(name, schema=schema)}


def row_count(engine: sa.Engine, name: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()


@pytest.fixture
def sqlite_db(tmp_path) -> tuple[str, sa.Engine]:
    path = tmp_path / "clinic.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    create_patients(engine, "patients")
    yield f"sqlite:///{path}", engine
    engine.dispose()


@pytest.fixture
def pg_patients(pg_engine) -> str:
    """A fresh patient table in `public`; it and its synthetic copy are dropped afterwards."""
    name = f"patients_{uuid.uuid4().hex[:10]}"
    create_patients(pg_engine, name, aware=True)
    yield name
    with pg_engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS public.{name}, synthetic.{name}"))


def test_database_columns_keep_their_types(sqlite_db):
    url, _ = sqlite_db
    frame = read_source(check_source(parse_source(url, table="patients")))
    assert frame["age"].dtype == np.int64 and frame["visits"].dtype == "Int64" and frame["visits"].isna().any()
    assert frame["weight"].dtype == np.float64 and frame["bill"].dtype == np.float64
    assert frame["smoker"].dtype == "boolean" and frame["discharged"].dtype == bool
    assert all(pd.api.types.is_datetime64_any_dtype(frame[name]) for name in ("admitted", "seen"))
    assert set(frame["ward"]) <= set(WARDS) and len(frame) == 200


def test_sqlite_round_trip(sqlite_db, tmp_path, tabsynth_cli):
    url, engine = sqlite_db
    code, stdout, stderr = tabsynth_cli("release", url, "--table", "patients", "--out", tmp_path / "rel",
                                        "--out-table", "synthetic_patients", "--seed", "1")
    assert code == 0, stderr
    assert column_types(engine, "synthetic_patients") == column_types(engine, "patients")
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert manifest["out_table"]["table"] == "main.synthetic_patients"
    assert row_count(engine, "synthetic_patients") == manifest["out_table"]["rows"] == manifest["sampling"]["rows"]
    assert manifest["input"]["format"] == "sql" and len(manifest["input"]["sha256"]) == 64
    with engine.connect() as connection:
        visits = connection.execute(sa.text("SELECT typeof(visits), count(*) FROM synthetic_patients "
                                            "GROUP BY 1")).all()
    assert {kind for kind, _ in visits} <= {"integer", "null"}  # whole numbers, not 3.0


def test_inspect_and_fit_read_tables_and_queries(sqlite_db, tmp_path, tabsynth_cli):
    url, _ = sqlite_db
    code, stdout, stderr = tabsynth_cli("inspect", url, "--table", "patients", "--out", tmp_path / "schema.yaml")
    assert code == 0 and "main.patients: 200 rows, 10 columns" in stdout, stderr
    query = "SELECT age, ward, admitted FROM patients WHERE ward LIKE '%o%' AND '10:30' <> ''"
    code, _, stderr = tabsynth_cli("fit", url, "--query", query, "--out", tmp_path / "model")
    assert code == 0 and (tmp_path / "model" / "model.json").is_file(), stderr


@pytest.mark.slow
def test_existing_table_needs_replace_and_is_refused_before_any_work(sqlite_db, tmp_path, tabsynth_cli, ledger_url,
                                                                     monkeypatch):
    url, engine = sqlite_db
    monkeypatch.chdir(tmp_path)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE synthetic_patients (note TEXT)"))
        connection.execute(sa.text("INSERT INTO synthetic_patients VALUES ('keep me')"))
    dp = ["--model", "dp-marginal", "--epsilon", "1", "--source-id", "clinic"]
    code, _, stderr = tabsynth_cli("release", url, "--table", "patients", "--out", tmp_path / "rel",
                                   "--out-table", "synthetic_patients", *dp)
    assert code == 2 and "already exists" in stderr and "--replace" in stderr
    assert Ledger(ledger_url).spent("clinic") == (0, 0)  # refused before the debit, so before any fit
    assert not (tmp_path / "rel").exists() and row_count(engine, "synthetic_patients") == 1
    code, _, stderr = tabsynth_cli("release", url, "--table", "patients", "--out-table", "synthetic_patients",
                                   "--replace", "--seed", "2")  # no --out: the folder is named after the table
    assert code == 0, stderr
    assert column_types(engine, "synthetic_patients") == column_types(engine, "patients")
    manifest = json.loads((tmp_path / "synthetic_patients.release" / "manifest.json").read_text())
    assert row_count(engine, "synthetic_patients") == manifest["out_table"]["rows"] > 1


@pytest.mark.slow
def test_file_to_a_new_database_maps_pandas_types(people, tmp_path, tabsynth_cli):
    database = tmp_path / "new.db"
    code, _, stderr = tabsynth_cli("release", people, "--out", tmp_path / "rel", "--out-table", "people",
                                   "--out-url", f"sqlite:///{database}", "--seed", "4")
    assert code == 0, stderr
    engine = sa.create_engine(f"sqlite:///{database}")
    types = column_types(engine, "people")
    assert {name: types[name] for name in ("age", "weight_kg", "ward", "admitted", "name")} == {
        "age": "BIGINT", "weight_kg": "DOUBLE", "ward": "TEXT", "admitted": "DATETIME", "name": "TEXT"}
    assert row_count(engine, "people") == len(pd.read_parquet(tmp_path / "rel" / "synthetic.parquet"))
    engine.dispose()


@pytest.mark.slow
def test_blocked_release_writes_no_table(sqlite_db, tmp_path, tabsynth_cli):
    url, engine = sqlite_db
    never = tmp_path / "never.yaml"  # a copula spends no epsilon: the rule fails closed
    never.write_text("name: never\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n")
    code, _, stderr = tabsynth_cli("release", url, "--table", "patients", "--out", tmp_path / "rel",
                                   "--out-table", "synthetic_patients", "--policy", never, "--model", "copula")
    assert code == 3 and "blocked" in stderr
    assert not sa.inspect(engine).has_table("synthetic_patients") and not (tmp_path / "rel").exists()


def test_a_failed_folder_rolls_the_table_back(sqlite_db, tmp_path, tabsynth_cli):
    url, engine = sqlite_db
    blocker = tmp_path / "a-file"
    blocker.write_text("the release folder cannot be created under a file")
    code, _, stderr = tabsynth_cli("release", url, "--table", "patients", "--out", blocker / "rel",
                                   "--out-table", "synthetic_patients")
    assert code != 0 and "Traceback" not in stderr
    assert not sa.inspect(engine).has_table("synthetic_patients")


@pytest.mark.slow
def test_dp_release_from_a_table_charges_the_table(sqlite_db, tmp_path, tabsynth_cli, ledger_url):
    url, _ = sqlite_db
    policy = tmp_path / "dp.yaml"
    policy.write_text("name: dp\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n")
    code, _, stderr = tabsynth_cli("release", url.replace("sqlite:", "sqlite+pysqlite:"), "--table", "patients",
                                   "--out", tmp_path / "rel", "--model", "dp-marginal", "--epsilon", "0.5",
                                   "--policy", policy)
    assert code == 0, stderr
    source = f"sqlite:///{(tmp_path / 'clinic.db').resolve()}#main.patients"  # no driver: one name per table
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert manifest["privacy"]["ledger"]["source"] == source and "rows" not in manifest["input"]
    assert Ledger(ledger_url).spent(source)[0] == pytest.approx(0.5)
    code, _, stderr = tabsynth_cli("release", url, "--query", "SELECT * FROM patients", "--out", tmp_path / "q",
                                   "--model", "dp-marginal", "--policy", policy)
    assert code == 2 and "--source-id" in stderr and len(Ledger(ledger_url).totals()) == 1


def test_parquet_folder_is_one_table(tmp_path, tabsynth_cli):
    frame = pd.DataFrame({"age": np.arange(60) % 50 + 20, "ward": np.resize(WARDS, 60),
                          "year": np.resize([2023, 2024], 60)})
    frame.to_parquet(tmp_path / "visits", partition_cols=["year"], index=False)
    (tmp_path / "visits" / "_SUCCESS").write_text("")
    code, stdout, stderr = tabsynth_cli("inspect", tmp_path / "visits", "--out", tmp_path / "schema.yaml")
    assert code == 0 and "60 rows, 3 columns" in stdout, stderr


BAD_SOURCES = {
    "unreachable server": (["postgresql://me:s3cret@127.0.0.1:1/test", "--table", "t"], "failed"),
    "not a URL": (["postgresql://me:s3cret@db:port/test", "--table", "t"], "is not a database URL"),
    "unknown database type": (["nosuchdb://db/test", "--table", "t"], "unknown database type"),
    "unknown table": (["{url}", "--table", "patiens"], "did you mean 'patients'"),
    "no table or query": (["{url}"], "--table NAME or --query"),
    "table and query": (["{url}", "--table", "patients", "--query", "SELECT 1"], "not both"),
    "table with a file": (["{csv}", "--table", "patients"], "is a file path"),
    "missing SQLite file": (["sqlite:///{tmp}/nope.db", "--table", "t"], "SQLite database file not found"),
    "bad query": (["{url}", "--query", "SELECT nope FROM patients"], "--query failed"),
    "out table from a file": (["{csv}", "--out-table", "copy"], "give --out-url"),
    "out table is the source": (["{url}", "--table", "patients", "--out-table", "patients", "--replace"],
                                "is the source table"),
    "schema in SQLite": (["{url}", "--table", "patients", "--out-table", "synthetic.patients"], "no schemas"),
    "replace without table": (["{url}", "--table", "patients", "--replace"], "go with --out-table"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_sources_get_one_line(case, sqlite_db, people, tmp_path, tabsynth_cli):
    url, _ = sqlite_db
    args, message = BAD_SOURCES[case]
    args = [a.format(url=url, csv=people, tmp=tmp_path) for a in args]
    code, _, stderr = tabsynth_cli("release", *args, "--out", tmp_path / "rel")
    assert code == 2 and message in stderr, stderr
    assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr and "s3cret" not in stderr and not (tmp_path / "rel").exists()


@pytest.mark.slow
def test_postgresql_round_trip(pg_engine, pg_patients, tmp_path, tabsynth_cli):
    """The acceptance test: a patient table → release --out-table synthetic.<name> → same column types."""
    code, _, stderr = tabsynth_cli("release", POSTGRES, "--table", pg_patients, "--out", tmp_path / "rel",
                                   "--out-table", f"synthetic.{pg_patients}", "--seed", "3")
    assert code == 0, stderr
    synthetic = column_types(pg_engine, pg_patients, schema="synthetic")
    assert synthetic == column_types(pg_engine, pg_patients, schema="public")
    assert synthetic["seen"] == "TIMESTAMP WITH TIME ZONE" and synthetic["bill"] == "NUMERIC(10, 2)"
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert manifest["out_table"]["rows"] == row_count(pg_engine, f"synthetic.{pg_patients}") > 0
    assert manifest["input"]["table"] == f"public.{pg_patients}"


@pytest.mark.slow
def test_postgresql_replace_is_refused_then_atomic(pg_engine, pg_patients, tmp_path, tabsynth_cli):
    target = f"synthetic.{pg_patients}"
    with pg_engine.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA IF NOT EXISTS synthetic"))
        connection.execute(sa.text(f"CREATE TABLE {target} AS SELECT 1 AS marker"))
    args = ["release", POSTGRES, "--table", pg_patients, "--out", tmp_path / "rel", "--out-table", target]
    code, _, stderr = tabsynth_cli(*args)
    assert code == 2 and "already exists" in stderr and row_count(pg_engine, target) == 1
    code, _, stderr = tabsynth_cli(*args, "--replace")
    assert code == 0, stderr
    assert column_types(pg_engine, pg_patients, schema="synthetic") == column_types(pg_engine, pg_patients)


def test_postgresql_copy_keeps_every_string(pg_engine):
    """COPY's text format: tabs, newlines, backslashes, a literal \\N and '' all survive; only None is NULL."""
    from tabsynth.io.sql_sink import SqlSink, output_table, table_transaction

    strings = ["tab\there", "two\nlines", "back\\slash", "\\N", "", None, "Zoë «quoted» 'x'", "cr\r"]
    frame = pd.DataFrame({"i": range(8), "text": strings, "n": pd.array([1, None, 3, 4, 5, 6, 7, 8], dtype="Int64")})
    name = f"copy_{uuid.uuid4().hex[:10]}"
    sink = SqlSink(sa.make_url(POSTGRES), name, "synthetic", replace=False)
    try:
        with table_transaction(sink, output_table(sink, frame, {}, None), frame):
            pass
        with pg_engine.connect() as connection:
            back = connection.execute(sa.text(f"SELECT text, n FROM synthetic.{name} ORDER BY i")).all()
        assert [row[0] for row in back] == strings and [row[1] for row in back] == [1, None, 3, 4, 5, 6, 7, 8]
    finally:
        with pg_engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS synthetic.{name}"))


def test_replace_never_drops_the_source_whatever_the_spelling(sqlite_db, tmp_path, tabsynth_cli):
    url, engine = sqlite_db
    code, _, err = tabsynth_cli("release", url, "--table", "patients", "--out", tmp_path / "r",
                                "--out-table", "PATIENTS", "--replace")
    assert code == 2 and "is the source table" in err
    assert row_count(engine, "patients") == 200 and not (tmp_path / "r").exists()


def test_a_query_cannot_change_the_database(sqlite_db, tmp_path, tabsynth_cli):
    url, engine = sqlite_db
    code, _, err = tabsynth_cli("inspect", url, "--query", "SELECT 1 AS x; DROP TABLE patients",
                                "--out", tmp_path / "s.yaml")
    assert code == 2 and "--query failed" in err
    assert row_count(engine, "patients") == 200
    code, _, err = tabsynth_cli("inspect", url, "--query", "SELECT ward FROM patients -- all wards\n",
                                "--out", tmp_path / "s.yaml")
    assert code == 0, err


@pytest.mark.parametrize(("first", "second"), [
    ("postgresql://ann@localhost/clinic", "postgresql+psycopg2://bob:pw@127.0.0.1:5432/clinic"),
    ("postgresql:///clinic?host=db.example.org", "postgresql://db.example.org/clinic"),
])
def test_one_database_has_one_ledger_identity(first, second):
    from tabsynth.io.sql import identity_url, parse_url

    assert identity_url(parse_url(first)) == identity_url(parse_url(second))


def test_sqlite_table_names_ignore_case_in_the_ledger(sqlite_db):
    url, _ = sqlite_db
    lower = check_source(parse_source(url, table="patients")).ledger_identity()
    assert lower == check_source(parse_source(url, table="PATIENTS")).ledger_identity()
