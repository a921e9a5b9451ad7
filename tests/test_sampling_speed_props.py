"""What the fast sampling paths must keep: dtypes, the fitted distribution, bins and units, determinism.

The speed itself is measured in benchmarks/sampling_speed.py, not here.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

from tabsynth.models.base import create_model
from tabsynth.models.marginals import Marginal, _interpolate
from tabsynth.models.pgm import Domain, GraphicalModel, build_tree
from tabsynth.models.sdv import copula as copula_module
from tabsynth.table.codecs import BinCodec
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.values import as_dtype, take_categories

ROWS = 200_000


def object_take(categories: tuple, indices: np.ndarray, dtype: str) -> pd.Series:
    """The reference: an object array of the values taken, its dtype inferred, then cast (the old decode)."""
    values = np.array([*categories, None], dtype=object)[indices]
    return as_dtype(pd.Series(values, name="c").infer_objects(), dtype)


@pytest.mark.parametrize(("categories", "dtype"), [
    (("a", "b", "c"), "object"), ((3, 1, 2), "int64"), ((1.5, 2.0), "float64"), ((False, True), "bool"),
    ((1, "x"), "object"), ((2, 2.5), "float64"), ((None,), "float64"), ((), "object"), ((True, False), "boolean"),
])
@pytest.mark.parametrize("with_missing", [False, True])
def test_taking_categories_gives_the_column_an_object_array_would(categories, dtype, with_missing):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, max(len(categories), 1), 50) if categories else np.zeros(50, dtype=np.int64)
    if with_missing or not categories:
        indices[::7] = len(categories)
    expected = object_take(categories, indices, dtype)
    pd.testing.assert_series_equal(take_categories(categories, indices, dtype, "c"), expected)
    if with_missing:  # a step marginal marks missing with -1: the same column
        pd.testing.assert_series_equal(take_categories(categories, np.where(indices == len(categories), -1, indices),
                                                       dtype, "c"), expected)


def test_interpolating_evenly_spaced_knots_is_np_interp():
    rng = np.random.default_rng(1)
    knots = np.sort(rng.gamma(2.0, 10.0, 1000))
    v = np.concatenate([rng.random(10_000), [0.0, 1.0 - 1e-12, 0.5]])
    np.testing.assert_allclose(_interpolate(knots, v), np.interp(v, np.linspace(0, 1, 1000), knots), rtol=1e-12)
    assert (_interpolate(knots[:1], v) == knots[0]).all()
    wide = _interpolate(np.array([-1.5e308, 0.0, 1.5e308]), np.sort(v))  # np.interp overflows to inf here
    assert np.isfinite(wide).all() and (np.diff(wide) >= 0).all() and wide[0] == -1.5e308


def test_a_step_marginal_draws_its_categories_and_missing_share():
    marginal = Marginal("w", "categorical", "object", missing=0.1, categories=("icu", "ward", "clinic"),
                        probs=np.array([0.5, 0.3, 0.2]))
    column = marginal.decode(np.random.default_rng(2).random(ROWS))
    assert column.dtype == object
    shares = column.value_counts(normalize=True, dropna=False)
    expected = {"icu": 0.45, "ward": 0.27, "clinic": 0.18, None: 0.1}
    for value, share in expected.items():
        got = column.isna().mean() if value is None else shares[value]
        assert abs(got - share) < 4 * np.sqrt(share * (1 - share) / ROWS)


def correlated_table(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({
        "x": x, "y": 0.7 * x + np.sqrt(1 - 0.49) * rng.normal(size=n),
        "pay": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.gamma(2.0, 900.0, n), 2)),
        "kind": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        "count": rng.integers(0, 5, n),
    })


@pytest.fixture(scope="module")
def copula_and_table():
    raw = correlated_table()
    schema = infer_schema(raw)
    table = conform(raw, schema)
    return create_model("copula").fit(table, schema, rng=0), table


def normal_scores(values: pd.Series) -> np.ndarray:
    return ndtri((values.rank(method="average").to_numpy() - 0.5) / len(values))


def test_copula_samples_keep_dtypes_marginals_and_the_fitted_correlation(copula_and_table):
    model, table = copula_and_table
    sample = model.sample(ROWS, rng=4)
    assert [str(t) for t in sample.dtypes] == [str(t) for t in table.dtypes]
    fitted = model.copula_.correlation.loc["x", "y"]
    assert abs(np.corrcoef(normal_scores(sample["x"]), normal_scores(sample["y"]))[0, 1] - fitted) < 0.01
    for marginal in model.marginals_:
        if marginal.categories is not None:
            shares = sample[marginal.name].value_counts(normalize=True)
            for value, p in zip(marginal.categories, marginal.probs, strict=True):
                assert abs(shares.get(value, 0.0) - p) < 4 * np.sqrt(p * (1 - p) / ROWS) + 1e-9
    pay = sample["pay"]
    assert abs(pay.isna().mean() - table["pay"].isna().mean()) < 0.01
    assert (pay.dropna() == pay.dropna().round(2)).all()
    assert table["pay"].min() <= pay.min() and pay.max() <= table["pay"].max()


def test_copula_sampling_in_chunks_is_deterministic_and_keeps_the_dependence(copula_and_table, monkeypatch):
    model, _ = copula_and_table
    monkeypatch.setattr(copula_module, "CHUNK_ROWS", 7_000)
    first, again = model.sample(50_000, rng=5), model.sample(50_000, rng=5)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(model.sample(50_000, rng=6))
    fitted = model.copula_.correlation.loc["x", "y"]
    assert abs(np.corrcoef(normal_scores(first["x"]), normal_scores(first["y"]))[0, 1] - fitted) < 0.02
    assert model.sample(0, rng=5).shape == (0, 5) and len(model.sample(7_001, rng=5)) == 7_001


def test_copula_factor_reproduces_the_correlation_even_when_only_semidefinite():
    correlation = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])  # a constant column's zero row
    fake = type("Fitted", (), {"correlation": pd.DataFrame(correlation), "univariates": []})()
    factor, _, _ = copula_module._sampling_form(fake)
    np.testing.assert_allclose(factor @ factor.T, correlation, atol=1e-12)


def bins(unit: float | None, kind: str = "numerical", dtype: str = "float64") -> BinCodec:
    edges = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    groups = np.array([0, 0, 0, 1, 2, 2])
    weights = np.array([1.0, 0.0, 3.0, 0.0, 0.0, 0.0])  # bin 1 and bin 2 weigh nothing: uniform over their cells
    return BinCodec("v", kind, dtype, edges, groups, weights, unit, nullable=True)


@pytest.mark.parametrize(("unit", "dtype"), [(None, "float64"), (1.0, "int64"), (0.5, "float64")])
def test_bin_decode_stays_in_the_bin_draws_cells_by_weight_and_respects_the_unit(unit, dtype):
    codec = bins(unit, dtype=dtype)
    codes = np.random.default_rng(6).integers(0, 3, ROWS)
    values = codec.decode(codes, np.random.default_rng(7)).to_numpy(float)
    first_cell = {0: 0, 1: 3, 2: 4}
    low = codec.edges[[first_cell[c] for c in range(3)]][codes]
    high = codec.edges[[3, 4, 6]][codes]
    assert ((low <= values) & (values < high)).all()
    cells = np.searchsorted(codec.edges, values, side="right") - 1
    assert (codec.groups[cells] == codes).all()
    if unit is not None:
        offsets = (values - codec.edges[cells]) / unit
        np.testing.assert_allclose(offsets, np.round(offsets), atol=1e-9)
    assert not np.isin(cells, [1]).any(), "a cell of weight 0 in a bin with weight is never drawn"
    share = (cells[codes == 0] == 2).mean()
    assert abs(share - 0.75) < 4 * np.sqrt(0.75 * 0.25 / (codes == 0).sum())
    assert abs((cells[codes == 2] == 4).mean() - 0.5) < 0.01


def test_bin_decode_keeps_missing_and_the_dtype():
    codec = bins(1.0, dtype="float64")
    codes = np.array([0, 3, 1, 3, 2])  # 3: the missing cell
    column = codec.decode(codes, np.random.default_rng(8))
    assert column.dtype == np.float64 and column.isna().tolist() == [False, True, False, True, False]
    assert bins(1.0, dtype="int64").decode(np.array([0, 1, 2]), np.random.default_rng(8)).dtype == np.int64
    assert len(codec.decode(np.zeros(0, dtype=np.int64), np.random.default_rng(8))) == 0


def test_pgm_rows_come_in_random_order_and_children_stay_conditionally_independent():
    """Only A links B, C and D (cliques AB, AC, AD): drawing C and then D for the rows of each A must not tie
    them through the row order, and no stretch of rows may differ from another."""
    domain = Domain(("A", "B", "C", "D"), (2, 3, 4, 2))
    tree = build_tree(domain, [("A", "B"), ("A", "C"), ("A", "D")])
    rng = np.random.default_rng(9)
    model = GraphicalModel(domain, tree, [rng.normal(size=domain.shape(c)) for c in tree.cliques], 1.0)
    rows = model.sample(ROWS, np.random.default_rng(10))
    halves = rows[: ROWS // 2], rows[ROWS // 2:]
    for i, size in enumerate(domain.sizes):
        shares = [np.bincount(h[:, i], minlength=size) / len(h) for h in halves]
        assert np.abs(shares[0] - shares[1]).max() < 0.01
    for a in range(2):
        given = rows[rows[:, 0] == a]
        for x, y in ((1, 2), (2, 3), (1, 3)):
            joint = np.zeros((domain.sizes[x], domain.sizes[y]))
            np.add.at(joint, (given[:, x], given[:, y]), 1.0)
            joint /= len(given)
            assert np.abs(joint - np.outer(joint.sum(1), joint.sum(0))).max() < 0.006


@pytest.mark.parametrize("unit", ["s", "ns"])
def test_whole_numbers_become_the_datetimes_pandas_gives(unit):
    from tabsynth.table.values import as_datetimes

    rng = np.random.default_rng(4)
    scale = 1 if unit == "s" else 10**9
    whole = np.floor(rng.uniform(-2e9, 4e9, 5000)) * scale
    whole[rng.random(5000) < 0.1] = np.nan
    fractional = whole + rng.random(5000) * scale
    for numbers in (whole, fractional, np.array([np.nan, np.nan]), np.array([]), np.array([1e12 * scale])):
        try:
            expected = pd.to_datetime(numbers, unit=unit)
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            with pytest.raises((OverflowError, pd.errors.OutOfBoundsDatetime)):
                as_datetimes(numbers, unit)
            continue
        got = pd.Series(as_datetimes(numbers, unit))
        pd.testing.assert_series_equal(got, pd.Series(expected))
