"""A public-looking patient table with unusual names in name-titled columns and a repeated key, end to end:
`inspect` flags the names and the key, a default release copies no real name into any column, and `validate`
blocks a file that carries real names, naming the column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tabsynth.pii import comparable
from tabsynth.pii.words import known_names

N_ROWS = 2_400


def _unusual_names(rng: np.random.Generator, n: int) -> list[str]:
    """Names in no dictionary ('Zorvakin', 'Quellith'), as a real register of rare family names holds."""
    onsets, vowels = list("bdfghklmnprstvzq"), ["a", "e", "i", "o", "u", "ae", "ou"]
    codas = ["n", "th", "sk", "rd", "x"]
    names: set[str] = set()
    while len(names) < n:
        parts = [rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.integers(2, 4))]
        names.add(("".join(parts) + rng.choice(codas)).capitalize())
    assert not names & known_names()
    return sorted(names)


@pytest.fixture(scope="module")
def patients(tmp_path_factory):
    rng = np.random.default_rng(2024)
    subjects = rng.integers(10_000, 10_800, N_ROWS)  # about three tests per patient
    frame = pd.DataFrame({
        "subject_id": subjects,
        "patient_first_name": rng.choice(_unusual_names(rng, 300), N_ROWS),
        "patient_last_name": rng.choice(_unusual_names(rng, 40), N_ROWS),
        "age": rng.integers(18, 90, N_ROWS),
        "test": rng.choice(["glucose", "hba1c", "ldl", "tsh"], N_ROWS),
        "result": np.round(rng.lognormal(1.5, 0.4, N_ROWS), 2),
    })
    path = tmp_path_factory.mktemp("patients") / "patients.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_names_and_key_are_flagged_none_copied_and_validate_blocks_real_names(patients, tmp_path, tabsynth_cli):
    path, real = patients
    assert real["patient_last_name"].nunique() == 40 and not real["subject_id"].is_unique

    schema_path = tmp_path / "schema.yaml"
    code, stdout, stderr = tabsynth_cli("inspect", path, "--out", schema_path)
    assert code == 0, stderr
    assert "pii:first_name" in stdout and "pii:last_name" in stdout
    from tabsynth.table.schema import Schema

    schema = Schema.load(schema_path)
    assert (schema["patient_first_name"].kind, schema["patient_first_name"].pii) == ("pii", "first_name")
    assert (schema["patient_last_name"].kind, schema["patient_last_name"].pii) == ("pii", "last_name")
    assert schema["subject_id"].kind == "id"

    out = tmp_path / "rel"
    code, stdout, stderr = tabsynth_cli("release", path, "--out", out, "--seed", "0", "--format", "csv")
    assert code == 0, stdout + stderr
    synthetic = pd.read_csv(out / "synthetic.csv")
    real_names = set(comparable(real["patient_first_name"])) | set(comparable(real["patient_last_name"]))
    for column in synthetic.columns:  # no real name in any released column
        assert not comparable(synthetic[column].astype(object)).isin(real_names).any(), column
    metrics = {m["name"]: m for m in json.loads((out / "manifest.json").read_text())["metrics"]}
    assert metrics["pii_leak"]["value"] == 0
    # subject_id repeats, so the rows were released by person: new keys, several rows each, none a real one
    assert synthetic["subject_id"].nunique() < len(synthetic)
    assert not synthetic["subject_id"].isin(real["subject_id"]).any()

    leaky = synthetic.assign(patient_last_name=real["patient_last_name"].to_numpy()[: len(synthetic)])
    leaky.to_csv(tmp_path / "leaky.csv", index=False)
    code, _, stderr = tabsynth_cli("validate", path, tmp_path / "leaky.csv")
    assert code == 3
    assert "pii_leak" in stderr and "PII column 'patient_last_name'" in stderr
    assert "patient_first_name" not in stderr


@pytest.mark.slow
def test_fakes_of_a_release_equal_no_real_value_even_for_common_names(tmp_path):
    from faker import Faker

    from tabsynth.run.options import ReleaseOptions
    from tabsynth.run.release import release

    fake = Faker("en_US")
    fake.seed_instance(5)
    rng = np.random.default_rng(5)
    n = 1_500  # real first and last names from the very lists the fakes are drawn from
    real = pd.DataFrame({"first_name": [fake.first_name() for _ in range(n)],
                         "last_name": [fake.last_name() for _ in range(n)],
                         "age": rng.integers(18, 90, n), "weight": np.round(rng.normal(70, 12, n), 2)})
    real.to_csv(tmp_path / "people.csv", index=False)
    result = release(ReleaseOptions(data=tmp_path / "people.csv", out=tmp_path / "rel", seed=5))
    names = set(comparable(real["first_name"])) | set(comparable(real["last_name"]))
    for column in ("first_name", "last_name"):
        assert not comparable(result.synthetic[column]).isin(names).any(), column
    assert {m["name"]: m["value"] for m in result.manifest["metrics"]}["pii_leak"] == 0
