"""The ledger knows a table by its parsed rows, not its bytes, and shows people the names it was charged under."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import InputError
from tabsynth.io.digest import table_digest
from tabsynth.io.files import read_table
from tabsynth.privacy.ledger import Ledger
from tabsynth.table.infer import infer_schema

FAST = ("--param", "iterations=20", "--param", "final_iterations=50")


@pytest.fixture
def clinic() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({
        "age": rng.integers(20, 90, n).astype(float), "city": rng.choice(["Leeds", "York", None], n),
        "seen": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
        "pay": np.round(rng.normal(100, 10, n), 2), "insured": rng.random(n) < 0.5})
    frame.loc[3, "age"] = np.nan
    return frame


@pytest.fixture
def encodings(clinic, tmp_path) -> dict[str, object]:
    """The same rows as CSV, CSV with CRLF line endings, and Parquet with rows and columns shuffled."""
    paths = {"csv": tmp_path / "clinic.csv", "crlf": tmp_path / "clinic_crlf.csv",
             "parquet": tmp_path / "clinic.parquet"}
    clinic.to_csv(paths["csv"], index=False)
    clinic.to_csv(paths["crlf"], index=False, lineterminator="\r\n")
    clinic.sample(frac=1, random_state=1)[["pay", "seen", "insured", "city", "age"]].to_parquet(paths["parquet"])
    return paths


def test_the_digest_of_the_rows_survives_re_encoding_and_sees_one_changed_value(clinic, encodings):
    digests = {name: table_digest(read_table(path)) for name, path in encodings.items()}
    assert len(set(digests.values())) == 1, digests
    changed = read_table(encodings["csv"])
    changed.loc[5, "pay"] += 0.01
    assert table_digest(changed) != digests["csv"]
    assert table_digest(read_table(encodings["csv"]).iloc[1:]) != digests["csv"]  # one row fewer


def test_crlf_and_parquet_copies_charge_one_ledger_source_shown_by_name(encodings, tmp_path, tabsynth_cli,
                                                                       ledger_url):
    schema = tmp_path / "schema.yaml"  # every column declared: this test is about the ledger, not the facts
    infer_schema(read_table(encodings["csv"])).save(schema)
    for name, path in encodings.items():
        code, _, stderr = tabsynth_cli("fit", path, "--out", tmp_path / f"{name}.model", "--model", "dp-marginal",
                                       "--epsilon", "0.5", "--schema", schema, *FAST)
        assert code == 0, (name, stderr)
    totals = Ledger(ledger_url).totals()
    assert len(totals) == 1 and totals[0]["releases"] == 3 and totals[0]["epsilon"] == pytest.approx(1.5)
    assert totals[0]["names"] == ["clinic.csv", "clinic.parquet", "clinic_crlf.csv"]
    code, stdout, _ = tabsynth_cli("ledger")
    assert code == 0 and "clinic.csv" in stdout and "clinic.parquet" in stdout


def test_a_policy_that_requires_dp_needs_a_source_id_for_a_file(encodings, tmp_path, tabsynth_cli, ledger_url):
    code, _, stderr = tabsynth_cli("release", encodings["csv"], "--out", tmp_path / "rel", "--model", "dp-marginal",
                                   "--policy", "strict-external-sharing")
    assert code == 2 and "--source-id" in stderr and len(stderr.strip().splitlines()) == 1
    assert Ledger(ledger_url).totals() == []


def test_the_duckdb_engine_needs_a_source_id_for_a_file(encodings, tmp_path, ledger_url):
    from tabsynth.run.options import ReleaseOptions
    from tabsynth.run.out_of_core import release_out_of_core

    options = ReleaseOptions(data=encodings["parquet"], out=tmp_path / "rel", model="dp-marginal", engine="duckdb")
    with pytest.raises(InputError, match="--source-id") as caught:
        release_out_of_core(options)
    assert len(caught.value.args) == 1 and Ledger(ledger_url).totals() == []


def test_a_ledger_written_before_names_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE tabsynth_privacy_ledger (entry INTEGER PRIMARY KEY, source VARCHAR(512) NOT NULL, "
                    "epsilon FLOAT NOT NULL, delta FLOAT NOT NULL, model VARCHAR(256) NOT NULL, note TEXT NOT NULL, "
                    "created VARCHAR(32) NOT NULL)")
        old.execute("INSERT INTO tabsynth_privacy_ledger VALUES (1, 'sha256:abc', 1.0, 1e-9, 'dp-marginal', '', "
                    "'2024-01-01T00:00:00+00:00')")
    ledger = Ledger(f"sqlite:///{path}")
    ledger.debit("rows-sha256:def", 0.5, 1e-9, cap_epsilon=1.6, cap_delta=1.0, model="dp-marginal",
                 name="claims.csv", aliases=("sha256:abc",))
    with pytest.raises(Exception, match="claims.csv"):  # the old file-hash debit counts against the cap
        ledger.debit("rows-sha256:def", 0.5, 1e-9, cap_epsilon=1.6, cap_delta=1.0, model="dp-marginal",
                     name="claims.csv", aliases=("sha256:abc",))
    names = {row["source"]: row["names"] for row in ledger.totals()}
    assert names == {"sha256:abc": [], "rows-sha256:def": ["claims.csv"]}
    assert ledger.history("rows-sha256:def")[0].name == "claims.csv"
