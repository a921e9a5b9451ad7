import numpy as np
import pytest
from scipy.stats import rankdata, wasserstein_distance

from tabsynth.metrics.statistics import average_ranks, wasserstein_1d


@pytest.mark.parametrize("values", [
    np.array([3, 1, 2, 2, 5, 1, 2]),
    np.random.default_rng(0).integers(0, 20, 500).astype(float),  # many ties
    np.random.default_rng(1).normal(size=300),
    np.array([4.0]),
    np.array([], dtype=float),
])
def test_average_ranks_are_scipys(values):
    np.testing.assert_array_equal(average_ranks(values), rankdata(values))


def test_a_missing_value_makes_every_rank_missing():
    assert np.isnan(average_ranks(np.array([1.0, np.nan, 2.0]))).all()
    assert np.isnan(rankdata([1.0, np.nan, 2.0])).all()


@pytest.mark.parametrize("u, v", [
    ([0, 1, 3], [5, 6, 8]),
    (np.random.default_rng(2).normal(size=400), np.random.default_rng(3).normal(0.3, 2, size=250)),
    (np.random.default_rng(4).integers(0, 5, 100), np.random.default_rng(5).integers(0, 5, 90)),  # ties across both
    ([1.0], [1.0]),
])
def test_wasserstein_is_scipys(u, v):
    assert wasserstein_1d(np.asarray(u), np.asarray(v)) == pytest.approx(wasserstein_distance(u, v), rel=1e-15, abs=0)
    assert wasserstein_1d(np.array([0, 1, 3]), np.array([5, 6, 8])) == 5.0
