"""`tabsynth release --engine duckdb`: from the command line, over a Parquet folder and over database tables that
DuckDB scans in place (SQLite always; PostgreSQL where it runs, and it must run under CI)."""

import json
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from test_sql import create_patients

from tabsynth.io.sql import SqlSource, parse_url
from tabsynth.scale.duckdb_counts import DuckDBCounts, DuckDBSession
from tabsynth.scale.duckdb_databases import attach

SETTINGS = ["--param", "rounds=3", "--param", "iterations=10", "--param", "final_iterations=20",
            "--param", "degree=2"]


@pytest.fixture
def dp_policy(tmp_path):
    path = tmp_path / "dp.yaml"
    path.write_text("name: dp\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n")
    return path


def release_args(data, out, policy, *extra) -> list[str]:
    return ["release", str(data), "--out", str(out), "--model", "dp-marginal", "--engine", "duckdb",
            "--epsilon", "1", "--policy", str(policy), "--seed", "4", *SETTINGS, *extra]


def test_the_cli_releases_a_parquet_folder_out_of_core(tabsynth_cli, tmp_path, dp_policy):
    rng = np.random.default_rng(0)
    folder = tmp_path / "visits"
    folder.mkdir()
    for part in range(3):
        pd.DataFrame({"age": rng.integers(18, 90, 700), "ward": rng.choice(["a", "b", "c"], 700),
                      "cost": rng.gamma(2.0, 100.0, 700)}).to_parquet(folder / f"part-{part}.parquet")
    code, out, err = tabsynth_cli(*release_args(folder, tmp_path / "rel", dp_policy, "--source-id", "visits"))
    assert code == 0, err
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert manifest["input"]["engine"] == "duckdb" and manifest["input"]["format"] == "parquet folder"
    rows = manifest["outputs"]["synthetic.parquet"]["rows"]
    assert f"released {rows:,} synthetic rows" in out
    assert len(pd.read_parquet(tmp_path / "rel" / "synthetic.parquet")) == rows


def test_the_engine_refuses_models_it_cannot_fit_and_an_out_table(tabsynth_cli, tmp_path, dp_policy):
    data = tmp_path / "t.parquet"
    pd.DataFrame({"x": range(50)}).to_parquet(data)
    code, _, err = tabsynth_cli("release", data, "--out", tmp_path / "r", "--engine", "duckdb", "--model", "copula")
    assert code != 0 and "cannot fit out of core" in err and "Traceback" not in err
    code, _, err = tabsynth_cli(*release_args(data, tmp_path / "r", dp_policy, "--source-id", "t",
                                              "--out-table", "synthetic.t"))
    assert code != 0 and "--out-table is not available with --engine duckdb" in err
    assert not (tmp_path / "r").exists()


def _counts_through_duckdb(url: str, table: str) -> tuple[dict, dict]:
    source = SqlSource(parse_url(url), table=table)
    with DuckDBSession() as session:
        counts = DuckDBCounts.from_sql(session.connection, attach(session.connection, source), table)
        return counts.category_counts("ward"), counts.types


def _counts_in_pandas(engine: sa.Engine, table: str) -> dict:
    frame = pd.read_sql_table(table, engine)
    return {key: int(n) for key, n in frame["ward"].value_counts().items()}


def test_duckdb_scans_a_sqlite_table_in_place(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'clinic.db'}")
    create_patients(engine, "patients")
    wards, types = _counts_through_duckdb(f"sqlite:///{tmp_path / 'clinic.db'}", "patients")
    assert wards == _counts_in_pandas(engine, "patients")
    assert "admitted" in types and "ward" in types


@pytest.mark.slow
def test_duckdb_scans_a_postgres_table_in_place_and_releases_it(pg_engine, tabsynth_cli, tmp_path,  # noqa: F811
                                                                dp_policy):
    name = f"patients_{uuid.uuid4().hex[:10]}"
    create_patients(pg_engine, name, n=600)
    try:
        url = pg_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        wards, _ = _counts_through_duckdb(url, name)
        assert wards == _counts_in_pandas(pg_engine, name)
        code, out, err = tabsynth_cli(*release_args(url, tmp_path / "rel", dp_policy, "--table", name))
        assert code == 0, err
        manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
        assert manifest["input"]["format"] == "database" and manifest["input"]["table"] == f"public.{name}"
        assert manifest["privacy"]["ledger"]["source"].endswith(f"#public.{name}")
    finally:
        with pg_engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS public.{name}"))


def test_an_unknown_database_table_is_one_line(tmp_path):
    from tabsynth.errors import InputError

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'clinic.db'}")
    create_patients(engine, "patients")
    source = SqlSource(parse_url(f"sqlite:///{tmp_path / 'clinic.db'}"), table="nope")
    with DuckDBSession() as session, pytest.raises(InputError, match="nope"):
        DuckDBCounts.from_sql(session.connection, attach(session.connection, source), "nope")


def test_a_failed_attach_never_shows_the_password():
    from tabsynth.errors import InputError

    source = SqlSource(parse_url("postgresql://nobody:s3cretPW@127.0.0.1:1/none?connect_timeout=2"), table="t")
    with DuckDBSession() as session, pytest.raises(InputError) as caught:
        attach(session.connection, source)
    assert "s3cretPW" not in str(caught.value) and "cannot attach" in str(caught.value)
