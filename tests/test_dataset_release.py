"""Releasing linked tables (patients -> visits) end to end: one folder, keys that resolve, persons as the unit,
and bad input refused before anything is written or spent."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

import tabsynth
from tabsynth.errors import InputError, ReleaseBlocked, SchemaError
from tabsynth.testing import patients_and_visits

RELATIONS = {"tables": {
    "patients": {"primary_key": "patient_id"},
    "visits": {"primary_key": "visit_id", "order_by": "visit_date",
               "foreign_keys": [{"column": "patient_id", "references": "patients.patient_id"}]},
}}
FAST = {"epochs": 3}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    frames = patients_and_visits()
    out = tmp_path_factory.mktemp("linked") / "rel"
    result = tabsynth.release(frames, out, relations=RELATIONS, params=FAST, seed=1, progress=False)
    return frames, result


def test_a_dataset_release_is_one_folder_whose_keys_all_resolve(released):
    frames, result = released
    files = sorted(p.name for p in result.out.iterdir())
    assert files == ["manifest.json", "patients.parquet", "report.html", "visits.parquet"]
    patients = pd.read_parquet(result.out / "patients.parquet")
    visits = pd.read_parquet(result.out / "visits.parquet")
    assert patients["patient_id"].is_unique and visits["visit_id"].is_unique
    assert visits["patient_id"].isin(patients["patient_id"]).all()
    assert not set(patients["patient_id"]) & set(frames["patients"]["patient_id"])  # keys regenerated
    assert list(visits.columns) == list(frames["visits"].columns)
    pd.testing.assert_frame_equal(result.tables["visits"].reset_index(drop=True), visits, check_dtype=False)


def test_the_manifest_counts_persons_and_names_every_table(released):
    _, result = released
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["dataset"]["person_table"] == "patients"
    assert manifest["split"]["unit"] == "person"
    assert set(manifest["outputs"]) == {"patients.parquet", "visits.parquet", "report.html"}
    names = {m["name"] for m in manifest["metrics"]}
    assert {"referential_integrity", "mean_column_tvd", "mean_column_tvd.patients", "mean_column_tvd.visits"} <= names
    worst = next(m for m in manifest["metrics"] if m["name"] == "mean_column_tvd")
    per_table = [m["value"] for m in manifest["metrics"] if m["name"].startswith("mean_column_tvd.")]
    assert worst["value"] == pytest.approx(max(per_table))
    report = (result.out / "report.html").read_text()
    assert "Tables and keys" in report and "visits" in report and "patient_id -&gt; patients.patient_id" in report


def test_the_split_keeps_each_person_whole():
    from tabsynth.run.dataset import split_persons
    from tabsynth.table.dataset import relations_from_dict

    frames = patients_and_visits(300)
    train, holdout = split_persons(frames, relations_from_dict(RELATIONS), 0.3, np.random.default_rng(0))
    assert 50 < len(holdout["patients"]) < 130
    assert train["visits"]["patient_id"].isin(train["patients"]["patient_id"]).all()
    assert holdout["visits"]["patient_id"].isin(holdout["patients"]["patient_id"]).all()
    assert len(train["visits"]) + len(holdout["visits"]) == len(frames["visits"])


def test_the_cli_releases_a_dataset_yaml_of_files(tmp_path, tabsynth_cli):
    dataset = _dataset_files(tmp_path, patients_and_visits(120, seed=3))
    code, out, err = tabsynth_cli("release", dataset, "--out", tmp_path / "rel", "--param",
                                  "epochs=3", "--seed", "2", "--format", "csv")
    assert code == 0, err
    assert "synthetic persons" in out
    visits = pd.read_csv(tmp_path / "rel" / "visits.csv")
    patients = pd.read_csv(tmp_path / "rel" / "patients.csv")
    assert visits["patient_id"].isin(patients["patient_id"]).all()


def test_an_orphan_visit_is_refused_before_anything_is_written(tmp_path):
    frames = patients_and_visits(60)
    frames["visits"].loc[0, "patient_id"] = 999_999
    with pytest.raises(SchemaError, match="visits.patient_id: 1 rows reference no patients row"):
        tabsynth.release(frames, tmp_path / "rel", relations=RELATIONS, progress=False)
    assert not any(tmp_path.iterdir())


def test_dp_with_a_model_without_per_person_dp_is_refused_and_nothing_is_spent(tmp_path, ledger_url):
    from tabsynth.privacy.ledger import Ledger

    with pytest.raises(InputError, match="no per-person differential privacy"):
        tabsynth.release(patients_and_visits(60), tmp_path / "rel", relations=RELATIONS, model="argn", epsilon=1.0,
                         progress=False)
    assert not (tmp_path / "rel").exists()
    assert Ledger(ledger_url).history() == []


def test_a_failed_dataset_rule_blocks_and_writes_only_the_report(tmp_path):
    policy = tmp_path / "strict.yaml"
    policy.write_text(yaml.safe_dump({"name": "strict", "rules": [
        {"metric": "mean_column_tvd", "op": "<=", "threshold": 0.0}]}))
    with pytest.raises(ReleaseBlocked, match="mean_column_tvd"):
        tabsynth.release(patients_and_visits(80), tmp_path / "rel", relations=RELATIONS, policy=str(policy),
                         params=FAST, progress=False)
    assert not (tmp_path / "rel").exists()
    assert "Blocked" in (tmp_path / "rel.blocked.html").read_text()


def test_dataset_options_that_do_not_apply_are_named(tmp_path, tabsynth_cli):
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(RELATIONS))
    code, _, err = tabsynth_cli("release", tmp_path / "dataset.yaml", "--out", tmp_path / "rel", "--table", "x")
    assert code == 2 and "--table: not available for a dataset of linked tables" in err
    assert not (tmp_path / "rel").exists()


def test_out_table_writes_every_table_with_its_keys_in_one_transaction(tmp_path, tabsynth_cli):
    import sqlalchemy as sa

    frames = patients_and_visits(100, seed=5)
    url = f"sqlite:///{tmp_path / 'synth.db'}"
    result = tabsynth.release(frames, tmp_path / "rel", relations=RELATIONS, params=FAST, progress=False,
                              policy=str(_lenient_policy(tmp_path)), out_table="synth_", out_url=url)
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("synth_visits")["constrained_columns"] == ["visit_id"]
    (fk,) = inspector.get_foreign_keys("synth_visits")
    assert (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) == (
        ["patient_id"], "synth_patients", ["patient_id"])
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM synth_visits")).scalar()
    assert count == len(result.tables["visits"])
    assert result.manifest["out_tables"]["tables"] == {"patients": "synth_patients", "visits": "synth_visits"}
    engine.dispose()
    code, _, err = tabsynth_cli("release", _dataset_files(tmp_path, frames), "--out", tmp_path / "rel2",
                                "--out-table", "synth_", "--out-url", url)
    assert code == 2 and "synth_patients, synth_visits already exists" in err  # refused before any work
    assert not (tmp_path / "rel2").exists()


def test_out_table_on_postgresql_keeps_the_foreign_key(tmp_path, pg_engine):
    import uuid

    import sqlalchemy as sa

    schema = f"linked_{uuid.uuid4().hex[:8]}"
    url = pg_engine.url.render_as_string(hide_password=False)
    try:
        tabsynth.release(patients_and_visits(100, seed=6), tmp_path / "rel", relations=RELATIONS, params=FAST,
                         progress=False, policy=str(_lenient_policy(tmp_path)), out_table=f"{schema}.",
                         out_url=url)
        inspector = sa.inspect(pg_engine)
        (fk,) = inspector.get_foreign_keys("visits", schema=schema)
        assert fk["referred_table"] == "patients" and fk["referred_schema"] == schema
    finally:
        with pg_engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


def _lenient_policy(folder) -> object:
    path = folder / "lenient.yaml"
    path.write_text(yaml.safe_dump({"name": "lenient", "rules": [
        {"metric": "constraint_violations", "op": "<=", "threshold": 0}]}))
    return path


def _dataset_files(folder, frames) -> object:
    spec = {"tables": {name: {**entry, "path": f"{name}.csv"} for name, entry in RELATIONS["tables"].items()}}
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / "dataset.yaml").write_text(yaml.safe_dump(spec))
    return folder / "dataset.yaml"
