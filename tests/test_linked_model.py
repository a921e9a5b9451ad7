"""The linked model on patients -> visits with a known structure: keys, order, counts and lag-1 dependence kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabsynth.models.linked import LinkedSynthesizer, load_linked
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec
from tabsynth.table.infer import infer_schema

TINY = {"epochs": 20, "hidden": 32, "embedding": 8, "batch_size": 32, "threads": 1, "device": "cpu"}
RELATIONS = Relations({
    "patients": TableSpec("patients", primary_key="patient_id"),
    "visits": TableSpec("visits", primary_key="visit_id", order_by="date",
                        foreign_keys=(ForeignKey("patient_id", "patients", "patient_id"),)),
})


def patients_and_visits(persons: int = 300, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Old patients visit more; the diagnosis depends on sex and mostly repeats the previous one; urgent visits
    come after short gaps (1-3 days), routine ones after long ones (20-40 days)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, persons)
    sex = rng.choice(["F", "M"], persons)
    counts = np.where(age >= 60, rng.integers(4, 8, persons), rng.integers(1, 3, persons))
    patients = pd.DataFrame({"patient_id": np.arange(1, persons + 1) * 7, "age": age, "sex": sex})
    rows = []
    for pid, s, n in zip(patients["patient_id"], sex, counts, strict=True):
        date = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        diagnosis = rng.choice(["flu", "asthma"] if s == "F" else ["gout", "back"])
        for _ in range(n):
            if rng.random() < 0.2:
                diagnosis = rng.choice(["flu", "asthma", "gout", "back"])
            kind = rng.choice(["urgent", "routine"])
            rows.append((pid, date, diagnosis, kind))
            date += pd.Timedelta(days=int(rng.integers(1, 4) if kind == "urgent" else rng.integers(20, 41)))
    visits = pd.DataFrame(rows, columns=["patient_id", "date", "diagnosis", "kind"])
    visits.insert(0, "visit_id", [f"V{i:05d}" for i in range(len(visits))])
    return {"patients": patients, "visits": visits.sample(frac=1.0, random_state=1).reset_index(drop=True)}


def schemas_of(frames: dict[str, pd.DataFrame]) -> dict:
    schemas = {name: infer_schema(frame) for name, frame in frames.items()}
    schemas["visits"] = schemas["visits"].replace("patient_id", kind="id")
    return schemas


@pytest.fixture(scope="module")
def fitted():
    frames = patients_and_visits()
    model = LinkedSynthesizer("argn", **TINY).fit(frames, RELATIONS, schemas_of(frames), rng=0)
    return frames, model, model.sample(rng=1)


def test_keys_are_new_unique_and_resolve(fitted):
    real, _, synthetic = fitted
    patients, visits = synthetic["patients"], synthetic["visits"]
    assert patients["patient_id"].is_unique and visits["visit_id"].is_unique
    assert not patients["patient_id"].isin(real["patients"]["patient_id"]).any()
    assert not visits["visit_id"].isin(real["visits"]["visit_id"]).any()
    assert visits["patient_id"].isin(patients["patient_id"]).all()
    assert list(visits.columns) == list(real["visits"].columns)
    assert visits["date"].dtype == real["visits"]["date"].dtype


def test_sequences_are_ordered_and_counts_follow_age(fitted):
    _, _, synthetic = fitted
    visits, patients = synthetic["visits"], synthetic["patients"]
    assert visits.groupby("patient_id", sort=False)["date"].apply(lambda d: d.is_monotonic_increasing).all()
    counts = visits["patient_id"].value_counts().reindex(patients["patient_id"], fill_value=0).to_numpy()
    old = patients["age"].to_numpy() >= 60
    assert counts[old].mean() > 2 * counts[~old].mean()  # real: about 5.5 against 1.5
    assert counts.min() >= 0 and 0.9 < len(visits) / len(fitted[0]["visits"]) < 1.1


def test_previous_visit_and_sex_shape_the_diagnosis(fitted):
    _, _, synthetic = fitted
    visits = synthetic["visits"].merge(synthetic["patients"], on="patient_id")
    repeats = visits.groupby("patient_id")["diagnosis"].apply(lambda d: (d.to_numpy()[1:] == d.to_numpy()[:-1]))
    repeat_share = np.concatenate(repeats.to_numpy()).mean()
    assert repeat_share > 0.7  # real: about 0.85; independent draws would give about 0.3
    women = visits[visits["sex"] == "F"]["diagnosis"].isin(["flu", "asthma"]).mean()
    assert women > 0.7  # real: about 0.9


def test_gaps_follow_the_visit_kind(fitted):
    _, _, synthetic = fitted
    visits = synthetic["visits"].sort_values(["patient_id", "date"])
    gap = visits.groupby("patient_id")["date"].diff().dt.days.shift(-1)
    same = visits["patient_id"].eq(visits["patient_id"].shift(-1))
    urgent = gap[same & (visits["kind"] == "urgent")].median()
    routine = gap[same & (visits["kind"] == "routine")].median()
    assert urgent < 10 < routine


def test_save_and_load_give_the_same_sample(fitted, tmp_path):
    _, model, _ = fitted
    model.save(tmp_path / "linked")
    loaded = load_linked(tmp_path / "linked")
    for name, frame in model.sample(40, rng=5).items():
        pd.testing.assert_frame_equal(frame, loaded.sample(40, rng=5)[name])
    for path in (tmp_path / "linked").rglob("*"):
        if path.is_file():
            assert path.read_bytes()[:2] not in (b"\x80\x03", b"\x80\x04", b"\x80\x05")
