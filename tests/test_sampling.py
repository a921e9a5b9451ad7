import numpy as np
import pytest

from tabsynth.errors import InputError
from tabsynth.models.base import create_model
from tabsynth.rules.constraints import CheckConstraint, RangeConstraint, RangeSpec, valid_rows
from tabsynth.rules.parser import parse_condition
from tabsynth.sample.conditional import parse_rebalance, rebalance, sample_valid, sample_where
from tabsynth.table.distances import bin_codes, tvd
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import check_sample, contract_table


@pytest.fixture(scope="module")
def adult_fit(adult):
    schema = infer_schema(adult)
    data = conform(adult, schema)
    return create_model("copula").fit(data, schema, rng=0), data, schema


@pytest.fixture(scope="module")
def contract_fit():
    raw = contract_table()
    schema = infer_schema(raw)
    data = conform(raw, schema)
    return create_model("copula").fit(data, schema, rng=0), data, schema


def conditional_tvd(column, reference, other, schema):
    real_codes, other_codes = bin_codes(schema[column], reference[column], other[column])
    return tvd(real_codes, other_codes)


def test_where_returns_only_matching_rows_shaped_like_the_real_ones(adult_fit):
    model, data, schema = adult_fit
    condition = parse_condition("age >= 65 and sex == 'Female'", schema)
    rows = sample_where(model, 400, condition, rng=5)
    check_sample(rows, data, schema, 400)
    assert condition.mask(rows).all()
    real = data[condition.mask(data)]
    # the ages within the condition follow the real ages within it (all of Adult: TVD about 0.96)
    assert conditional_tvd("age", real, rows, schema) < 0.15 < conditional_tvd("age", real, data, schema)
    assert sample_where(model, 400, condition, rng=5).equals(rows)


def test_where_keeps_the_other_columns_conditional_distributions(adult_fit):
    model, data, schema = adult_fit
    condition = parse_condition("`hours-per-week` >= 50", schema)
    rows = sample_where(model, 2000, condition, rng=6)
    real = data[condition.mask(data)]
    others = ["income", "relationship", "sex", "marital-status"]
    to_conditional = np.mean([conditional_tvd(c, real, rows, schema) for c in others])
    to_marginal = np.mean([conditional_tvd(c, real, data, schema) for c in others])
    # closer to the real rows meeting the condition than the whole real table is
    assert to_conditional < 0.6 * to_marginal


def test_a_too_rare_condition_is_a_clear_error(adult_fit):
    model, _, schema = adult_fit
    condition = parse_condition("age >= 130", schema)
    with pytest.raises(InputError) as caught:
        sample_where(model, 10, condition, rng=1, max_draws=20_000)
    assert caught.value.problems == (
        "condition 'age >= 130' is too rare to meet: 0 of 20,000 sampled rows satisfied it",)


def test_a_rare_condition_stops_at_the_draw_limit(adult_fit):
    model, _, schema = adult_fit
    condition = parse_condition("age >= 65 and sex == 'Female'", schema)  # about 1 row in 100
    with pytest.raises(InputError, match=r"too rare to meet: \d+ of [\d,]+ sampled rows satisfied it"):
        sample_where(model, 1000, condition, rng=1, max_draws=5_000)


def test_rebalance_gives_the_share_and_keeps_conditional_structure(adult_fit):
    model, data, _ = adult_fit
    rows = rebalance(model, 2000, "income", ">50K", 0.5, rng=3)
    rich = rows["income"] == ">50K"
    assert len(rows) == 2000 and abs(rich.mean() - 0.5) <= 0.02
    assert rows["income"].notna().all()
    real_gap = data.loc[data.income == ">50K", "age"].mean() - data.loc[data.income != ">50K", "age"].mean()
    synthetic_gap = rows.loc[rich, "age"].mean() - rows.loc[~rich, "age"].mean()
    assert real_gap > 0 and synthetic_gap > 0.3 * real_gap
    assert not rich.iloc[:1000].all(), "rows are shuffled, not stacked"


def test_rebalance_a_true_false_column_by_share_alone(contract_fit):
    model, _, _ = contract_fit
    rows = rebalance(model, 500, *parse_rebalance("smoker=0.7"), rng=2)
    assert abs(rows["smoker"].mean() - 0.7) <= 0.02


def test_sample_valid_releases_only_valid_rows(contract_fit):
    model, data, schema = contract_fit
    constraints = [CheckConstraint(check="visits <= 3 or grade is null"),
                   RangeConstraint(range=RangeSpec(column="age", min=30))]
    rows, rejected = sample_valid(model, 300, schema, constraints, rng=4)
    check_sample(rows, data, schema, 300)
    assert valid_rows(rows, schema, constraints).all()
    assert rejected > 0
    condition = parse_condition("smoker == true", schema)
    rows, _ = sample_valid(model, 100, schema, constraints, rng=4, condition=condition)
    assert rows["smoker"].all() and valid_rows(rows, schema, constraints).all()


def test_sampling_zero_rows_gives_an_empty_table_with_the_columns(contract_fit):
    model, _, schema = contract_fit
    rows = sample_where(model, 0, parse_condition("age > 40", schema), rng=1)
    assert len(rows) == 0 and list(rows.columns) == [c.name for c in schema.modelled()]


@pytest.mark.parametrize("text, expected", [
    ("is_fraud=0.3", ("is_fraud", True, 0.3)),
    ("income='>50K'=0.5", ("income", ">50K", 0.5)),
    ("sex=Female=0.25", ("sex", "Female", 0.25)),
    ("label=0=1", ("label", 0, 1.0)),
    ("`hours per week`=40=0.1", ("hours per week", 40, 0.1)),
])
def test_parse_rebalance(text, expected):
    assert parse_rebalance(text) == expected


@pytest.mark.parametrize("text, problem", [
    ("income", "write column=share or column=value=share"),
    ("income=high", "the share 'high' is not a number"),
    ("income='>50K'=1.5", "the share must be between 0 and 1"),
    ("=0.5", "write column=share"),
])
def test_parse_rebalance_errors(text, problem):
    with pytest.raises(InputError, match=problem):
        parse_rebalance(text)


@pytest.mark.slow
def test_rebalanced_rare_rows_look_like_the_models_own_rare_rows():
    """argn conditions natively, but its conditioned-first orders saw few frauds: rebalancing by those gave
    frauds that looked like ordinary payments. Rebalanced frauds must look as real as the model's own."""
    from tabsynth.metrics.utility import minority_class_tvd
    from tabsynth.testing import fraud_table

    raw = fraud_table(6_000, seed=0)
    schema = infer_schema(raw)
    data = conform(raw, schema)
    model = create_model("argn", epochs=8, threads=1).fit(data, schema, rng=0)
    rows = rebalance(model, 3_000, *parse_rebalance("is_fraud=0.3"), rng=1)
    assert abs(rows["is_fraud"].mean() - 0.3) <= 0.01
    tvd_of = lambda frame: minority_class_tvd(data, frame, schema, "is_fraud")[0].value  # noqa: E731
    plain = model.sample(20_000, rng=2)
    natively = sample_where(model, 900, parse_condition("is_fraud == true", schema), rng=3)
    assert tvd_of(rows) < tvd_of(plain) + 0.05 < tvd_of(natively), (tvd_of(rows), tvd_of(plain), tvd_of(natively))


def test_copula_keeps_a_rare_class_distinct():
    """The copula spreads a class's scores over its step; uncorrected, that hid the dependence of a 3% class and
    rebalanced frauds had the amounts of ordinary payments (median 60 against 430)."""
    from tabsynth.testing import fraud_table

    raw = fraud_table(6_000, seed=0)
    schema = infer_schema(raw)
    data = conform(raw, schema)
    rows = rebalance(create_model("copula").fit(data, schema, rng=0), 3_000, *parse_rebalance("is_fraud=0.3"), rng=1)
    frauds, real_frauds = rows[rows["is_fraud"] == 1], data[data["is_fraud"] == 1]
    assert frauds["amount"].median() > 0.6 * real_frauds["amount"].median()
    assert frauds["channel"].ne("shop").mean() > 0.6  # 90% of real frauds, 30% of ordinary payments
