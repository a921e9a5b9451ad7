"""A flat table whose key-named column repeats (several rows per person) is released as persons with events:
the person is the unit of the split, the model and the risk checks, and the file comes back shaped like the input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tabsynth.testing import patients_and_visits


@pytest.fixture
def flat_csv(tmp_path):
    frames = patients_and_visits(140, seed=7)
    flat = frames["visits"].drop(columns="visit_id").merge(frames["patients"], on="patient_id")
    columns = ["subject_id", "age", "sex", "weight", "visit_date", "ward", "cost", "smoker"]
    flat = flat.rename(columns={"patient_id": "subject_id"})[columns]
    path = tmp_path / "visits_flat.csv"
    flat.to_csv(path, index=False)
    return path


def test_a_repeated_person_key_is_released_by_person_and_joined_back(flat_csv, tmp_path, tabsynth_cli):
    code, out, err = tabsynth_cli("release", flat_csv, "--out", tmp_path / "rel", "--model", "argn", "--param",
                                  "epochs=3", "--seed", "1", "--policy", _lenient(tmp_path))
    assert code == 0, err
    assert "person-level DCR share" in out
    synthetic = pd.read_parquet(tmp_path / "rel" / "synthetic.parquet")
    real = pd.read_csv(flat_csv)
    assert list(synthetic.columns) == list(real.columns)
    assert synthetic["subject_id"].duplicated().any()  # several rows per synthetic person
    per_person = synthetic.groupby("subject_id")[["age", "sex", "smoker"]].nunique()
    assert (per_person <= 1).all().all()  # a person's own columns agree across their rows
    assert not set(synthetic["subject_id"]) & set(real["subject_id"])
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert manifest["dataset"]["released_as_one_table"]["key"] == "subject_id"
    assert manifest["split"]["unit"] == "person"
    assert any(m["name"] == "person_dcr_share" and np.isfinite(m["value"]) for m in manifest["metrics"])


def test_a_model_without_per_person_dp_on_a_repeated_person_key_is_refused_unspent(flat_csv, tmp_path, ledger_url,
                                                                                   tabsynth_cli):
    from tabsynth.privacy.ledger import Ledger

    code, _, err = tabsynth_cli("release", flat_csv, "--out", tmp_path / "rel", "--model", "dp-marginal",
                                "--epsilon", "1")
    assert code == 2 and "no per-person differential privacy" in err and "nothing was spent" in err
    assert Ledger(ledger_url).history() == [] and not (tmp_path / "rel").exists()


def test_a_schema_declaring_the_key_keeps_the_rows_independent(flat_csv, tmp_path, tabsynth_cli):
    (tmp_path / "schema.yaml").write_text("columns:\n  - {name: subject_id, kind: categorical}\n")
    code, _, err = tabsynth_cli("release", flat_csv, "--out", tmp_path / "rel", "--model", "copula",
                                "--schema", tmp_path / "schema.yaml", "--policy", _lenient(tmp_path))
    assert code == 0, err
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert "dataset" not in manifest


def _lenient(folder) -> str:
    path = folder / "lenient.yaml"
    path.write_text("name: lenient\nrules:\n  - {metric: constraint_violations, op: '<=', threshold: 0}\n")
    return str(path)
