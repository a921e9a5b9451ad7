import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from tabsynth.metrics import distance
from tabsynth.metrics.attacks import AttackCounts, singling_out_risk, wilson_interval
from tabsynth.metrics.distance import fit_encoder, nearest_distances
from tabsynth.metrics.risk import dcr_share, exact_copies, hanley_mcneil_interval, privacy_risks, roc_auc
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import contract_table

RISKS = ("singling_out_risk", "linkability_risk", "attribute_inference_risk")


def values(results) -> dict:
    return {m.name: m.value for m in results}


def by_name(results) -> dict:
    return {m.name: m for m in results}


@pytest.fixture(scope="module")
def contract():
    """Training, holdout and an independent 'synthetic' draw of the same distribution, with missing values and dates."""
    schema = infer_schema(contract_table(800, seed=0))
    train, holdout, fresh = (conform(contract_table(800, seed=s), schema) for s in (0, 1, 2))
    return train, holdout, fresh, schema


@pytest.fixture(scope="module")
def adult_split(adult):
    sample = adult.sample(6_000, random_state=0).reset_index(drop=True)
    schema = infer_schema(sample)
    table = conform(sample, schema)
    return table.iloc[:2_000], table.iloc[2_000:4_000], table.iloc[4_000:], schema


@pytest.fixture(scope="module")
def contract_results(contract):
    train, holdout, fresh, schema = contract
    return {"copy": by_name(privacy_risks(train, holdout, train.copy(), schema, rng=np.random.default_rng(0))),
            "fresh": by_name(privacy_risks(train, holdout, fresh, schema, rng=np.random.default_rng(0)))}


def test_nearest_distances_match_brute_force_in_small_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    queries, reference = rng.normal(size=(57, 5)), rng.normal(size=(40, 5))
    reference[3] = queries[7]
    queries[:, 1] = reference[:, 1] = 0.0  # a feature 0 everywhere is left out of the products
    queries[5, 4] = 0.0  # one 0 among others counts
    monkeypatch.setattr(distance, "CHUNK_CELLS", 100)  # several blocks of queries
    found, indices = nearest_distances(queries, reference, k=3)
    expected = np.sort(cdist(queries, reference), axis=1)[:, :3]
    np.testing.assert_allclose(found, expected, atol=1e-12)
    assert found[7, 0] == 0.0 and indices[7, 0] == 3
    np.testing.assert_allclose(np.linalg.norm(queries[:, None] - reference[indices], axis=2), found, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_nearest_distances_among_rows_alike_on_categories_match_brute_force(k, monkeypatch):
    rng = np.random.default_rng(k)
    train = pd.DataFrame({"x": rng.normal(size=400), "y": rng.gamma(2, size=400),
                          "c": rng.choice(list("abcdefghijkl"), 400), "d": rng.choice(["u", "v", "w", None], 400)})
    encoder = fit_encoder(train, infer_schema(train).modelled())
    unlike = train.iloc[:10].assign(c="new")  # no reference row alike: left to the products
    reference, queries = encoder.encode(train.iloc[:300]), encoder.encode(pd.concat([train.iloc[250:], unlike]))
    monkeypatch.setattr(distance, "CHUNK_CELLS", 500)  # several blocks of pairs
    found, indices = nearest_distances(queries, reference, k=k, discrete=encoder.discrete())
    expected = np.sort(cdist(queries, reference), axis=1)[:, :k]
    np.testing.assert_allclose(found, expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(queries[:, None] - reference[indices], axis=2), found, atol=1e-12)
    assert (found[:50, 0] == 0).all() and (indices[:50, 0] == np.arange(250, 300)).all()
    done, _, _ = distance._nearest_alike(queries, reference, k, encoder.discrete())
    assert done[:50].any() and not done[-10:].any()  # both ways of finding neighbours were taken


def test_privacy_risks_sharing_encodings_give_what_each_check_gives_alone(adult_split):
    from tabsynth.metrics import risk

    train, holdout, synthetic, schema = adult_split
    together = values(privacy_risks(train, holdout, synthetic, schema, rng=np.random.default_rng(4), max_rows=1_500))
    children = np.random.default_rng(4).spawn(len(risk.CHECKS))
    alone = values(exact_copies(train, holdout, synthetic, schema))
    for check, child in zip(risk.CHECKS, children, strict=True):
        alone |= values(check(train, holdout, synthetic, schema, rng=child, max_rows=1_500))
    assert together == alone and len(alone) == 9


def test_a_table_too_wide_to_encode_whole_is_encoded_per_sample(adult_split, monkeypatch):
    train, holdout, synthetic, schema = adult_split
    whole = dcr_share(train, holdout, synthetic, schema, rng=np.random.default_rng(1), max_rows=700)
    monkeypatch.setattr(distance, "PRE_ENCODED_CELLS", 0)
    assert distance.encode_tables(train, holdout, synthetic, schema.modelled()).synthetic.features is None
    per_sample = dcr_share(train, holdout, synthetic, schema, rng=np.random.default_rng(1), max_rows=700)
    assert values(per_sample) == values(whole)


def test_nearest_distances_with_too_few_reference_rows():
    found, indices = nearest_distances(np.zeros((2, 3)), np.ones((1, 3)), k=2)
    assert np.allclose(found[:, 0], math.sqrt(3)) and np.isinf(found[:, 1]).all() and (indices[:, 1] == -1).all()
    assert nearest_distances(np.zeros((0, 3)), np.ones((4, 3)))[0].shape == (0, 2)


def test_encoding_costs_a_category_mismatch_like_a_full_range():
    train = pd.DataFrame({"x": np.linspace(0, 100, 101), "c": ["a", "b"] * 50 + [None]})
    encoder = fit_encoder(train, infer_schema(train).modelled())
    rows = pd.DataFrame({"x": [10.0, 10.0, 10.0 + 98.0, np.nan], "c": ["a", "b", "a", "a"]})
    features = encoder.encode(rows)
    gap = lambda i, j: float(np.sum((features[i] - features[j]) ** 2))  # noqa: E731
    assert gap(0, 1) == pytest.approx(1.0)  # another category
    assert gap(0, 2) == pytest.approx(1.0)  # 98 = the 1st-to-99th percentile range of x
    assert gap(0, 3) >= 1.0  # missing is its own value
    assert encoder.encode(pd.DataFrame({"x": [np.nan], "c": ["unseen"]})).shape == (1, features.shape[1])


def test_attack_risk_and_intervals():
    assert AttackCounts(50, 0, 100).summary()["risk"] == pytest.approx(0.5)
    assert AttackCounts(60, 20, 100).summary()["risk"] == pytest.approx(0.5)
    assert AttackCounts(10, 20, 100).summary()["risk"] == 0.0
    low, high = AttackCounts(60, 20, 100).summary()["ci95"]
    assert 0 < low < 0.5 < high < 1
    low, high = wilson_interval(30, 100)
    assert 0.2 < low < 0.3 < high < 0.4


def test_roc_auc_and_its_interval():
    assert roc_auc(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0])) == 1.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    low, high = hanley_mcneil_interval(0.7, 500, 500)
    assert 0.6 < low < 0.7 < high < 0.8


def test_copies_of_training_rows_are_flagged(contract_results):
    copy = contract_results["copy"]
    assert copy["exact_copy_rate"].value == 1.0
    assert copy["dcr_share"].value > 0.95
    assert copy["nndr_p5"].value == 0.0
    assert copy["mia_auc"].value > 0.9
    assert copy["attribute_inference_risk"].value > 0.5
    assert copy["singling_out_risk"].value > 0.5 and copy["linkability_risk"].value > 0.3


def test_an_independent_draw_looks_like_chance(contract_results):
    fresh = contract_results["fresh"]
    low, high = fresh["dcr_share"].details["ci95"]
    assert low <= 0.5 <= high and abs(fresh["dcr_share"].value - 0.5) < 0.05
    assert abs(fresh["mia_auc"].value - 0.5) < 0.05
    assert fresh["exact_copy_rate"].value == 0.0
    for name in RISKS:
        assert fresh[name].value < 0.15, name


def test_missing_values_and_dates_are_handled(contract, contract_results):
    schema = contract[3]
    assert {"admitted", "income", "grade"} <= set(schema.names) and schema["admitted"].kind == "datetime"
    results = contract_results["fresh"]
    assert all(m.is_valid and m.reads_private_rows for m in results.values())
    secrets = results["attribute_inference_risk"].details["per_secret"]
    assert set(secrets) == {c.name for c in schema.modelled()}
    assert results["dcr_share"].goal == "target" and results["mia_auc"].goal == "min"


@pytest.mark.slow
def test_adult_copies_and_fresh_rows(adult_split):
    train, holdout, fresh, schema = adult_split
    copy = values(privacy_risks(train, holdout, train, schema, rng=np.random.default_rng(1), max_rows=2_000))
    assert copy["dcr_share"] > 0.9 and copy["mia_auc"] > 0.8 and copy["attribute_inference_risk"] > 0.5
    honest = values(privacy_risks(train, holdout, fresh, schema, rng=np.random.default_rng(1), max_rows=2_000))
    assert abs(honest["dcr_share"] - 0.5) < 0.05 and abs(honest["mia_auc"] - 0.5) < 0.05
    assert max(honest[name] for name in RISKS) < 0.15


def test_same_generator_seed_gives_the_same_results(contract):
    train, holdout, fresh, schema = contract
    first, second = (privacy_risks(train, holdout, fresh, schema, rng=np.random.default_rng(7)) for _ in range(2))
    assert [m.to_dict() for m in first] == [m.to_dict() for m in second]


def test_an_empty_holdout_gives_nan_not_a_crash(contract):
    train, holdout, fresh, schema = contract
    results = by_name(privacy_risks(train, holdout.iloc[:0], fresh, schema, rng=np.random.default_rng(0)))
    for name in ("dcr_share", "mia_auc", *RISKS):
        assert math.isnan(results[name].value) and "holdout" in results[name].details["reason"], name
    assert values(exact_copies(train, holdout.iloc[:0], fresh, schema))["holdout_copy_rate"] == 0.0


def test_details_can_be_written_to_the_manifest(contract, contract_results):
    train, holdout, fresh, schema = contract
    empty = privacy_risks(train, holdout.iloc[:0], fresh.iloc[:0], schema, rng=np.random.default_rng(0))
    for result in [*contract_results["copy"].values(), *empty]:
        json.dumps(result.to_dict(), allow_nan=False)


def test_singling_out_rescales_a_smaller_holdout(contract):
    train, _, _, schema = contract
    big_train = pd.concat([train, conform(contract_table(800, seed=3), schema)], ignore_index=True)
    holdout, fresh = (conform(contract_table(n, seed=s), schema) for n, s in ((800, 1), (1600, 2)))
    copied = singling_out_risk(big_train, holdout, big_train, schema, rng=np.random.default_rng(0))[0]
    honest = singling_out_risk(big_train, holdout, fresh, schema, rng=np.random.default_rng(0))[0]
    assert copied.details["train_rows"] == 2 * honest.details["holdout_rows"] == 1600
    assert copied.value > 0.9 and honest.value < 0.1


def test_a_secret_the_control_nearly_always_guesses_has_a_stable_small_risk():
    from tabsynth.metrics.attacks import _inference_summary

    # 496 of 500 for the control and 498 for the attack: (0.996 - 0.992) / 0.008 would say 0.5
    summary = _inference_summary(AttackCounts(498.0, 496.0, 500))
    assert summary["risk"] == pytest.approx(0.004) and "absolute excess" in summary["note"]
    assert _inference_summary(AttackCounts(300.0, 200.0, 500))["risk"] == pytest.approx(1 / 3)


def test_a_column_determined_by_another_is_not_an_inference_risk():
    from tabsynth.metrics.attacks import attribute_inference_risk

    def draw(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        ward = rng.choice(["icu", "surgery", "oncology"], 1500)
        return pd.DataFrame({"ward": ward, "floor": pd.Series(ward).map({"icu": "1", "surgery": "2", "oncology": "3"}),
                             "age": rng.integers(20, 90, 1500), "stay": rng.gamma(2.0, 3.0, 1500).round(1)})

    schema = infer_schema(draw(0))
    train, holdout, synthetic = (conform(draw(s), schema) for s in (0, 1, 2))
    result = attribute_inference_risk(train, holdout, synthetic, schema, rng=np.random.default_rng(0))[0]
    assert result.details["per_secret"]["floor"]["risk"] < 0.02
    assert result.value < 0.15


@pytest.mark.parametrize("train_rows, holdout_rows, max_rows", [(3_200, 800, 10_000), (3_200, 800, 1_000)])
def test_dcr_share_reaches_one_for_copies_and_a_half_by_chance(train_rows, holdout_rows, max_rows):
    """The training side is larger than the holdout (4:1, as a 0.2 holdout share gives), and with a small
    max_rows both are sampled: copies still count fully as closer to training, fresh rows as chance."""
    schema = infer_schema(contract_table(800, seed=0))
    train, holdout, fresh = (conform(contract_table(n, seed=s), schema)
                             for n, s in ((train_rows, 0), (holdout_rows, 1), (2_000, 2)))
    copies = train.sample(2_000, random_state=0)
    copied = dcr_share(train, holdout, copies, schema, rng=np.random.default_rng(0), max_rows=max_rows)[0]
    assert copied.value >= 0.95 and copied.details["exact_training_copy_share"] == 1.0
    honest = dcr_share(train, holdout, fresh, schema, rng=np.random.default_rng(0), max_rows=max_rows)[0]
    low, high = honest.details["ci95"]
    assert abs(honest.value - 0.5) < 0.05 and low <= 0.5 <= high, honest.details
    assert honest.details["chance_raw_share"] == pytest.approx(0.8) and abs(honest.details["raw_share"] - 0.8) < 0.05
    half = pd.concat([copies.iloc[:1_000], fresh.iloc[:1_000]], ignore_index=True)
    mixed = dcr_share(train, holdout, half, schema, rng=np.random.default_rng(0), max_rows=max_rows)[0].value
    assert 0.6 < mixed < copied.value


def test_a_copy_of_a_row_that_the_holdout_repeats_is_a_tie():
    schema = infer_schema(contract_table(800, seed=0))
    train, fresh = (conform(contract_table(n, seed=s), schema) for n, s in ((800, 0), (400, 1)))
    holdout = pd.concat([fresh, train.iloc[:400]], ignore_index=True)  # train's first 400 rows are in both
    tied = dcr_share(train, holdout, train.iloc[:400], schema, rng=np.random.default_rng(0))[0]
    assert tied.value == pytest.approx(0.5) and tied.details["exact_training_copy_share"] == 0.0
    copied = dcr_share(train, holdout, train.iloc[400:], schema, rng=np.random.default_rng(0))[0]
    assert copied.value == 1.0 and copied.details["exact_training_copy_share"] == 1.0


def test_copy_excess_counts_only_copies_beyond_what_the_holdout_bounds_chance_at(contract):
    train, holdout, fresh, schema = contract
    one_copy = pd.concat([train.iloc[:1], fresh.iloc[:122]], ignore_index=True)  # 1 of 123 rows copies training
    small = values(exact_copies(train, holdout.iloc[:30], one_copy, schema))
    assert small["exact_copy_rate"] == pytest.approx(1 / 123) and small["holdout_copy_rate"] == 0.0
    assert small["exact_copy_excess"] == 0.0  # 30 holdout rows bound chance at 0.11: one copy is within it
    copier = pd.concat([train.iloc[:300], fresh.iloc[:500]], ignore_index=True)  # 300 of 800 copy training
    many = values(exact_copies(train, holdout, copier, schema))
    bound = wilson_interval(many["holdout_copy_rate"] * len(holdout), len(holdout))[1]
    assert many["exact_copy_excess"] == pytest.approx(many["exact_copy_rate"] - bound) and bound < 0.01
    assert many["exact_copy_excess"] > 0.35
    no_baseline = values(exact_copies(train, holdout.iloc[:0], copier, schema))
    assert no_baseline["exact_copy_excess"] == no_baseline["exact_copy_rate"]  # nothing to compare: every copy counts
