import math

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import InputError
from tabsynth.metrics.fidelity import MAX_ASSOCIATION_ROWS, association_matrix, correlation_difference
from tabsynth.metrics.utility import bias, minority_class_tvd, ml_utility, utility_metrics
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import contract_table, fraud_table


def values(results) -> dict[str, float]:
    return {m.name: m.value for m in results}


def by_name(results) -> dict:
    return {m.name: m for m in results}


@pytest.fixture(scope="module")
def adult_split(adult):
    table = adult.iloc[:3000].reset_index(drop=True)
    schema = infer_schema(table)
    table = conform(table, schema)
    return schema, table.iloc[:2000].reset_index(drop=True), table.iloc[2000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def contract():
    table = contract_table(600, seed=3)
    schema = infer_schema(table)
    return schema, conform(table, schema)


def test_a_copy_of_the_real_rows_matches_them(adult_split):
    schema, train, holdout = adult_split
    results = utility_metrics(train, holdout, train.copy(), schema, target="income", sensitive=["sex", "race"])
    got = values(results)
    assert got["mean_wasserstein"] == pytest.approx(0, abs=1e-12) and got["correlation_difference"] == 0
    assert got["category_coverage"] == 1 and got["range_coverage"] == 1
    assert got["tstr_auc"] == got["trtr_auc"] > 0.8 and got["tstr_ratio"] == 1
    assert abs(got["augmentation_gain"]) < 0.01  # twice the same rows: a slightly different model
    assert got["max_subgroup_share_gap"] == 0 and got["max_subgroup_target_gap"] == 0
    assert all(m.is_valid and m.reads_private_rows and m.goal in ("min", "max") for m in results)
    assert by_name(results)["tstr_auc"].details["positive_class"] == ">50K"


def test_mode_collapse_shows_in_coverage_and_distances(adult_split):
    schema, train, holdout = adult_split
    collapsed = train.assign(occupation=train["occupation"].mode()[0], age=train["age"].median())
    results = by_name(utility_metrics(train, holdout, collapsed, schema))
    categories = train["occupation"].nunique()
    assert results["category_coverage"].details["per_column"]["occupation"] == pytest.approx(1 / categories)
    assert results["range_coverage"].details["per_column"]["age"] == 0
    assert results["category_coverage"].value < 1 and results["range_coverage"].value < 1
    assert results["wasserstein:age"].value > 0.3 and results["tvd:occupation"].value > 0.5
    assert results["wasserstein:hours-per-week"].value == pytest.approx(0, abs=1e-12)


def test_shuffled_columns_keep_marginals_but_lose_dependence(adult_split):
    schema, train, holdout = adult_split
    rng = np.random.default_rng(0)
    shuffled = pd.DataFrame({name: rng.permutation(train[name].to_numpy()) for name in train.columns})
    got = values(utility_metrics(train, holdout, shuffled, schema, target="income"))
    assert got["mean_column_tvd"] == 0 and got["mean_wasserstein"] == pytest.approx(0, abs=1e-12)
    assert got["correlation_difference"] > 0.1
    assert got["trtr_auc"] > 0.8 and abs(got["tstr_auc"] - 0.5) < 0.08


def test_bias_detects_a_dropped_subgroup_and_a_changed_rate(adult_split):
    schema, train, _ = adult_split
    female = train["sex"] == "Female"
    dropped = by_name(bias(train, train[~female], schema, ["sex"], target=None))
    assert dropped["subgroup_share_gap:sex"].value == pytest.approx(female.mean())
    assert {row["subgroup"] for row in dropped["subgroup_share_gap:sex"].details["subgroups"]} == {"Female", "Male"}
    assert "max_subgroup_target_gap" not in dropped

    no_rich_women = train.assign(income=train["income"].where(~female, "<=50K"))
    changed = values(bias(train, no_rich_women, schema, ["sex"], target="income"))
    assert changed["subgroup_share_gap:sex"] == 0
    assert changed["subgroup_target_gap:sex"] == pytest.approx((train.loc[female, "income"] == ">50K").mean())


def test_small_subgroups_have_no_target_rate(adult_split):
    schema, train, _ = adult_split
    result = by_name(bias(train, train, schema, ["race"], target="income"))["subgroup_target_gap:race"]
    rows = {row["subgroup"]: row for row in result.details["subgroups"]}
    small = train["race"].value_counts().loc[lambda counts: counts < 30].index
    assert len(small) and all(rows[group]["real_rate"] is None for group in small)


def test_association_matrix_known_values():
    rng = np.random.default_rng(1)
    x = rng.normal(size=2000)
    band = pd.cut(x, [-np.inf, -1, 0, 1, np.inf], labels=["a", "b", "c", "d"]).astype(str)
    frame = pd.DataFrame({"x": x, "cube": x**3, "minus": -x, "band": band, "same_band": band,
                          "noise": rng.choice(list("pqr"), 2000)})
    matrix = association_matrix(frame, infer_schema(frame))
    assert np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1)
    assert matrix.loc["x", "cube"] == pytest.approx(1) and matrix.loc["x", "minus"] == pytest.approx(-1)
    assert matrix.loc["band", "same_band"] == pytest.approx(1, abs=1e-3) and matrix.loc["x", "band"] > 0.9
    assert abs(matrix.loc["band", "noise"]) < 0.05 and abs(matrix.loc["x", "noise"]) < 0.1


def test_regression_and_multiclass_targets(contract):
    schema, table = contract
    train, holdout = table.iloc[:400], table.iloc[400:]
    regression = by_name(ml_utility(train, holdout, train, schema, "income"))
    assert regression["trtr_r2"].details["metric"] == "r2" and regression["trtr_r2"].value > 0.5
    assert regression["trtr_r2"].details["rows"]["train"] == train["income"].notna().sum()
    multiclass = by_name(ml_utility(train, holdout, train, schema, "grade"))
    assert multiclass["trtr_auc"].details["task"] == "multiclass"
    assert 0 <= multiclass["trtr_auc"].value <= 1


@pytest.mark.slow
def test_degenerate_synthetic_tables_give_nan(contract):
    schema, table = contract
    train, holdout = table.iloc[:400], table.iloc[400:]
    constant = values(ml_utility(train, holdout, train.assign(smoker=True), schema, "smoker"))
    assert math.isnan(constant["tstr_auc"]) and math.isnan(constant["tstr_ratio"])
    assert 0 <= constant["trtr_auc"] <= 1 and 0 <= constant["augmented_auc"] <= 1
    missing_class = values(ml_utility(train, holdout, train[train["grade"] != "C"], schema, "grade"))
    assert math.isnan(missing_class["tstr_auc"]) and not math.isnan(missing_class["trtr_auc"])
    constant_number = values(ml_utility(train, holdout, train.assign(income=1.0), schema, "income"))
    assert math.isnan(constant_number["tstr_r2"])

    empty = values(utility_metrics(train, holdout, train.iloc[:0], schema, target="grade", sensitive=["grade"]))
    assert all(math.isnan(empty[name]) for name in ("tstr_auc", "mean_wasserstein", "correlation_difference"))
    assert empty["category_coverage"] == 0 and empty["range_coverage"] == 0
    assert empty["subgroup_share_gap:grade"] == pytest.approx(train["grade"].value_counts(dropna=False).max() / 400)


def test_bad_columns_raise_one_clear_line(contract):
    schema, table = contract
    with pytest.raises(InputError, match="target column 'nope' is not a modelled column") as error:
        ml_utility(table, table, table, schema, "nope")
    assert len(error.value.problems) == 1
    with pytest.raises(InputError, match="sensitive column 'income' is continuous"):
        bias(table, table, schema, ["income"], target=None)
    with pytest.raises(InputError, match="holds dates"):
        ml_utility(table, table, table, schema, "admitted")


def test_results_are_deterministic(contract):
    schema, table = contract
    train, holdout = table.iloc[:400], table.iloc[400:]
    synthetic = table.sample(400, random_state=5)
    first = values(ml_utility(train, holdout, synthetic, schema, "smoker", random_state=3))
    assert first == values(ml_utility(train, holdout, synthetic, schema, "smoker", random_state=3))

    big = contract_table(MAX_ASSOCIATION_ROWS + 1, seed=4)
    big = conform(big, schema)
    assert association_matrix(big, schema, random_state=1).equals(association_matrix(big, schema, random_state=1))
    result = correlation_difference(big, big.iloc[::-1], schema)[0]
    assert result.details["subsampled"] and result.value < 0.05


@pytest.fixture(scope="module")
def fraud():
    raw = fraud_table(6_000, seed=0)
    schema = infer_schema(raw)
    train, holdout, fresh = (conform(frame, schema) for frame in (raw, fraud_table(3_000, 1), fraud_table(6_000, 2)))
    return schema, train, holdout, fresh


def test_a_0_1_label_is_scored_as_a_class_not_a_number(fraud):
    schema, train, holdout, fresh = fraud
    assert schema["is_fraud"].kind == "boolean"
    results = by_name(ml_utility(train, holdout, fresh, schema, "is_fraud"))
    assert {"tstr_auc", "trtr_auc", "augmented_auc", "tstr_ratio", "augmentation_gain"} == set(results)
    assert results["tstr_auc"].details["metric"] == "roc_auc" and results["tstr_auc"].value > 0.9
    gain = results["augmented_auc"].value - results["trtr_auc"].value
    assert results["augmentation_gain"].value == pytest.approx(gain) and abs(gain) < 0.01
    assert set(values(ml_utility(train, holdout, fresh, schema, "amount"))) == {
        "tstr_r2", "trtr_r2", "augmented_r2", "tstr_ratio", "augmentation_gain"}


def test_rows_that_only_carry_the_rare_label_are_caught(fraud):
    """Relabelling ordinary rows as frauds reaches any share, but the 'frauds' look like ordinary rows."""
    schema, train, holdout, fresh = fraud
    honest = by_name(minority_class_tvd(train, fresh, schema, "is_fraud"))["minority_class_tvd"]
    assert honest.value < 0.15 and honest.details["minority_class"] == "1"  # 180 real frauds: noise ~0.1
    relabelled = fresh.assign(is_fraud=(np.arange(len(fresh)) % 3 == 0).astype(int))
    faked = by_name(minority_class_tvd(train, relabelled, schema, "is_fraud"))["minority_class_tvd"]
    assert faked.value > 0.3 and faked.details["per_column"]["channel"] > 0.3
    assert faked.details["synthetic_rows"] == 2_000
    assert "minority_class_tvd" in values(utility_metrics(train, holdout, fresh, schema, target="is_fraud"))
    none = minority_class_tvd(train, fresh.assign(is_fraud=0), schema, "is_fraud")[0]
    assert math.isnan(none.value) and "no synthetic row" in none.details["reason"]
    assert minority_class_tvd(train, fresh, schema, "amount") == []
