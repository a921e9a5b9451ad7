"""Linked-table metrics on generated patients and their visits: each check must tell a copy, a fresh draw of the
same process and a synthetic dataset broken in one known way apart."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import InputError
from tabsynth.metrics.linked import linked_metrics
from tabsynth.publish.policy import Rule
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec
from tabsynth.table.infer import infer_schema

VISITS_KEY = ForeignKey("patient_id", "patients", "id")


def relations(order_by: str | None = "date") -> Relations:
    return Relations({"patients": TableSpec("patients", primary_key="id"),
                      "visits": TableSpec("visits", primary_key="visit_id", foreign_keys=(VISITS_KEY,),
                                          order_by=order_by)})


def patients_and_visits(n: int, seed: int, first_id: int = 0) -> dict[str, pd.DataFrame]:
    """High-risk patients (more often old) visit more often, at shorter gaps; a diagnosis mostly repeats from one
    visit to the next and costs follow the previous visit's cost. About 10% of patients have no visit."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    risk = np.where(rng.random(n) < (age - 10) / 100, "high", "low")
    patients = pd.DataFrame({"id": np.arange(first_id, first_id + n), "age": age,
                             "sex": rng.choice(["F", "M"], n), "risk": risk})
    counts = rng.poisson(np.where(risk == "high", 6.0, 2.3))
    owner = np.repeat(np.arange(n), counts)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    position = np.arange(len(owner)) - np.repeat(start, counts)
    gaps = rng.exponential(np.where(risk[owner] == "high", 20.0, 120.0)).round() + 1
    days = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[start] - gaps[start], counts) if len(owner) else gaps
    days = days + np.repeat(rng.integers(0, 365, n), counts)
    first_diagnosis = np.where(risk == "high", rng.choice(["heart", "lung", "skin"], n, p=[.6, .3, .1]),
                               rng.choice(["heart", "lung", "skin"], n, p=[.1, .3, .6]))
    kept = rng.random(len(owner)) < 0.8
    diagnosis = np.where(kept | (position == 0), first_diagnosis[owner], rng.choice(["heart", "lung", "skin"],
                                                                                    len(owner)))
    level = np.repeat(rng.normal(100, 40, n), counts) + age[owner] * 2
    cost = (level + rng.normal(0, 10, len(owner)) * (1 + position)).round(2)
    visits = pd.DataFrame({"visit_id": np.arange(len(owner)) + first_id * 100, "patient_id": owner + first_id,
                           "date": pd.Timestamp("2021-01-01", tz="UTC") + pd.to_timedelta(days, "D"),
                           "diagnosis": diagnosis, "cost": cost})
    return {"patients": patients, "visits": visits}


def values(results) -> dict:
    return {m.name: m.value for m in results}


def by_name(results) -> dict:
    return {m.name: m for m in results}


@pytest.fixture(scope="module")
def data():
    train = patients_and_visits(1_500, seed=0)
    schemas = {name: infer_schema(frame) for name, frame in train.items()}
    return train, patients_and_visits(1_500, seed=1, first_id=10_000), schemas


def run(data, synthetic, rels=None, **options):
    train, holdout, schemas = data
    options = {"holdout": holdout, "rng": 0, **options}
    return by_name(linked_metrics(train, synthetic, rels or relations(), schemas, **options))


@pytest.fixture(scope="module")
def scores(data):
    train = data[0]
    fresh = patients_and_visits(1_500, seed=2, first_id=20_000)
    shuffled = {"patients": train["patients"], "visits": train["visits"].assign(
        patient_id=np.random.default_rng(3).choice(train["patients"]["id"], len(train["visits"])))}
    reordered = {"patients": fresh["patients"], "visits": fresh["visits"].assign(
        date=fresh["visits"]["date"].sample(frac=1, random_state=4).to_numpy())}
    copy = {name: frame.copy() for name, frame in train.items()}
    return {name: run(data, synthetic, target=("patients", "risk"))
            for name, synthetic in (("copy", copy), ("fresh", fresh), ("shuffled", shuffled),
                                    ("reordered", reordered))}


def test_every_result_is_finite_and_named_for_a_policy(scores):
    for results in scores.values():
        assert not [name for name, m in results.items() if not m.is_valid]
        assert all(Rule(metric=name, op="<=", threshold=1.0) for name in results)
        assert all(m.description and m.goal in ("min", "max", "target") for m in results.values())
        json.dumps([m.to_dict() for m in results.values()])
    assert {"referential_integrity.visits", "table_column_tvd.patients", "children_per_parent_tvd.visits",
            "consecutive_pairs_tvd", "person_dcr_share", "person_membership", "person_tstr_auc",
            "exact_sequence_copies"} <= set(scores["fresh"])
    assert not scores["fresh"]["referential_integrity"].reads_private_rows
    assert scores["fresh"]["person_dcr_share"].reads_private_rows


def test_a_copy_is_caught_as_a_copy(scores):
    copy = values(scores["copy"].values())
    assert copy["exact_sequence_copies"] == 1.0
    assert copy["person_dcr_share"] > 0.95 and copy["person_membership"] > 0.9
    for name in ("table_column_tvd", "table_pair_tvd", "children_per_parent_tvd", "parent_child_association_gap",
                 "sequence_length_tvd", "time_between_events", "consecutive_pairs_tvd", "position_marginals_tvd"):
        assert copy[name] == pytest.approx(0.0, abs=1e-12), name
    assert copy["referential_integrity"] == 1.0


def test_a_fresh_draw_of_the_same_process_looks_alike_and_copies_nothing(scores):
    fresh = values(scores["fresh"].values())
    assert fresh["exact_sequence_copies"] < 0.01
    assert 0.4 < fresh["person_dcr_share"] < 0.6 and 0.4 < fresh["person_membership"] < 0.6
    assert fresh["table_column_tvd"] < 0.06 and fresh["children_per_parent_tvd"] < 0.06
    assert fresh["time_between_events"] < 0.06 and fresh["consecutive_pairs_tvd"] < 0.08
    assert fresh["parent_child_association_gap"] < 0.06
    details = scores["fresh"]["person_tstr_auc"].details
    assert fresh["person_tstr_auc"] > 0.75 and details["trtr"] > 0.75


def test_shuffling_visits_across_patients_breaks_sequences_and_parent_links(scores):
    fresh, shuffled = values(scores["fresh"].values()), values(scores["shuffled"].values())
    assert shuffled["table_column_tvd.visits"] == 0.0  # the same visit rows, only their owners changed
    assert shuffled["parent_child_association_gap"] > 0.1 > 2 * fresh["parent_child_association_gap"]
    assert shuffled["consecutive_pairs_tvd"] > 3 * fresh["consecutive_pairs_tvd"]
    assert shuffled["children_per_parent_tvd"] > 0.1 > 2 * fresh["children_per_parent_tvd"]
    assert shuffled["person_tstr_auc"] < fresh["person_tstr_auc"] - 0.05
    worst = scores["shuffled"]["parent_child_association_gap.visits"].details["worst_pairs"][0]
    assert worst["parent_column"] in ("age", "risk") and worst["real"] > 0.3  # both shape the visits; sex not


def test_dates_shuffled_across_visits_break_the_time_between_events(scores):
    fresh, reordered = values(scores["fresh"].values()), values(scores["reordered"].values())
    assert reordered["table_column_tvd.visits"] < 0.06  # every column keeps its distribution
    assert reordered["time_between_events"] > 0.3 > 5 * fresh["time_between_events"]
    gaps = scores["reordered"]["time_between_events.visits"].details["median_gap"]
    assert gaps["synthetic"] > 3 * gaps["real"]


def test_orphans_and_repeated_keys_lower_referential_integrity(data):
    fresh = patients_and_visits(300, seed=5, first_id=20_000)
    visits = fresh["visits"].copy()
    visits.loc[visits.index[:50], "patient_id"] = -1
    visits.loc[visits.index[50:60], "visit_id"] = visits["visit_id"].iloc[0]
    results = run(data, {"patients": fresh["patients"], "visits": visits})
    integrity = results["referential_integrity.visits"]
    assert integrity.value == pytest.approx(1 - 50 / len(visits))
    assert integrity.details["orphans:patient_id"] == 50
    assert integrity.details["missing_or_repeated_primary_keys"] == 10
    assert results["referential_integrity"].value == integrity.value
    assert results["referential_integrity"].details["orphans"] == 50
    assert results["referential_integrity.patients"].value == 1.0
    assert all(m.is_valid for m in results.values())


def test_patients_without_visits_are_counted(scores):
    counts = scores["fresh"]["children_per_parent_tvd.visits"].details
    assert 0.05 < counts["real"]["share_with_none"] < 0.2
    lengths = scores["fresh"]["sequence_length_tvd.visits"].details["sequences"]
    assert lengths["real"] == round(1_500 * (1 - counts["real"]["share_with_none"]))


def test_a_child_table_without_order_has_no_sequence_checks(data):
    fresh = patients_and_visits(400, seed=6, first_id=20_000)
    results = run(data, fresh, relations(order_by=None))
    assert not [name for name in results if name.startswith("time_between_events.")]
    assert results["time_between_events"].value == 0.0
    assert results["time_between_events"].details["reason"] == "no sequence table to compare"
    assert results["children_per_parent_tvd.visits"].is_valid
    assert all(m.is_valid for m in results.values())


def test_a_dataset_of_one_table(data):
    """Visits alone: a table with no foreign key is its own person table."""
    train, holdout, schemas = data
    single = Relations({"visits": TableSpec("visits", primary_key="visit_id")})
    results = by_name(linked_metrics({"visits": train["visits"]}, {"visits": train["visits"].copy()}, single,
                                     schemas, holdout={"visits": holdout["visits"]}, rng=0))
    assert all(m.is_valid for m in results.values())
    assert results["parent_child_association_gap"].value == 0.0
    assert results["table_column_tvd.visits"].value == 0.0
    assert results["person_dcr_share"].value > 0.95  # every synthetic person is a training person
    assert results["exact_sequence_copies"].value == 1.0


def test_without_holdout_the_person_checks_say_why(data):
    train, _, schemas = data
    results = by_name(linked_metrics(train, train, relations(), schemas, rng=0))
    assert math.isnan(results["person_dcr_share"].value)
    assert "holdout" in results["person_dcr_share"].details["reason"]
    assert results["exact_sequence_copies"].value == 1.0
    assert results["exact_sequence_copies"].details["holdout_copy_rate"] is None


def test_a_target_outside_the_person_table_is_refused(data):
    train, holdout, schemas = data
    with pytest.raises(InputError, match="person table 'patients'"):
        linked_metrics(train, train, relations(), schemas, holdout=holdout, target=("visits", "cost"))


def with_procedures(frames: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """A third level: procedures of each visit, none for some."""
    rng = np.random.default_rng(seed)
    visits = frames["visits"]
    counts = rng.poisson(1.0, len(visits))
    owner = np.repeat(visits["visit_id"].to_numpy(), counts)
    procedures = pd.DataFrame({"procedure_id": np.arange(len(owner)) + seed * 1_000_000, "visit_id": owner,
                               "code": rng.choice(["x-ray", "blood", "scan"], len(owner)),
                               "minutes": rng.gamma(2.0, 15.0, len(owner)).round(1)})
    return {**frames, "procedures": procedures}


def test_rows_two_levels_down_belong_to_their_visit_s_patient(data):
    train, holdout, schemas = data
    train, holdout = with_procedures(train, 7), with_procedures(holdout, 8)
    schemas = {**schemas, "procedures": infer_schema(train["procedures"])}
    deep = Relations({**relations().tables, "procedures": TableSpec(
        "procedures", primary_key="procedure_id", foreign_keys=(ForeignKey("visit_id", "visits", "visit_id"),))})
    fresh = with_procedures(patients_and_visits(800, seed=9, first_id=20_000), 10)
    copy, drawn = (by_name(linked_metrics(train, synthetic, deep, schemas, holdout=holdout, rng=0))
                   for synthetic in (train, fresh))
    assert all(m.is_valid for results in (copy, drawn) for m in results.values())
    assert copy["exact_sequence_copies"].value == 1.0 and drawn["exact_sequence_copies"].value < 0.01
    assert copy["person_dcr_share"].value > 0.95 and drawn["person_dcr_share"].value < 0.6
    assert drawn["children_per_parent_tvd.procedures"].value < 0.06
    assert "sequence_length_tvd.procedures" not in drawn  # procedures have no order column


def test_policies_name_linked_metrics_per_table_or_for_the_worst_table():
    from tabsynth.metrics import catalogue

    assert Rule(metric="time_between_events.visits", op="<=", threshold=0.2)
    assert Rule(metric="referential_integrity", op=">=", threshold=1.0)
    with pytest.raises(ValueError, match="unknown metric"):
        Rule(metric="person_dcr_share.visits", op="<=", threshold=0.6)  # one figure per dataset, no table
    with pytest.raises(ValueError, match="unknown metric"):
        Rule(metric="table_colum_tvd.visits", op="<=", threshold=0.1)
    # Keys are checked on the synthetic rows alone: such a rule may decide a DP release; nothing else linked may.
    assert set(catalogue.LINKED) & catalogue.DP_DECISION == {"referential_integrity"}


def test_a_synthetic_dataset_without_visits_scores_badly_and_does_not_crash(data):
    fresh = patients_and_visits(400, seed=11, first_id=20_000)
    results = run(data, {"patients": fresh["patients"], "visits": fresh["visits"].iloc[:0]},
                  target=("patients", "risk"))
    assert all(m.is_valid for m in results.values())
    assert results["table_column_tvd.visits"].value == 1.0 and results["time_between_events"].value == 1.0
    assert results["children_per_parent_tvd"].value > 0.8
    assert "visits.cost@1" in results["person_tstr_auc"].details["features_left_out"]
    json.dumps([m.to_dict() for m in results.values()])  # the manifest and report hold every detail


def test_the_same_seed_gives_the_same_figures(data):
    fresh = patients_and_visits(300, seed=12, first_id=20_000)
    first, second = (values(run(data, fresh, target=("patients", "risk")).values()) for _ in range(2))
    assert first == second
