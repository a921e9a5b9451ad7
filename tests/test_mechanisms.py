import math
import time
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import chisquare

from tabsynth.privacy.accounting import gaussian_rho
from tabsynth.privacy.mechanisms import (
    Measurement,
    RandomSource,
    discrete_gaussian,
    exact_variance,
    exponential_mechanism,
    measure_counts,
    release_threshold,
    thresholded_counts,
)


def discrete_gaussian_pmf(sigma: float, support: np.ndarray) -> np.ndarray:
    weights = np.exp(-(support.astype(float) ** 2) / (2 * float(exact_variance(sigma))))
    return weights / weights.sum()


def assert_fits(observed_values: np.ndarray, support: np.ndarray, probabilities: np.ndarray):
    """Chi-square goodness of fit, pooling the far tails into the outermost cells."""
    clipped = np.clip(observed_values, support[0], support[-1]) - support[0]
    observed = np.bincount(clipped, minlength=support.size)
    expected = probabilities * observed_values.size
    assert chisquare(observed, expected).pvalue > 1e-4


def test_seeded_source_is_reproducible_and_system_is_not():
    first, second = RandomSource.seeded(3), RandomSource.seeded(3)
    assert np.array_equal(first.integers(10**9, size=50), second.integers(10**9, size=50))
    assert first.generator().random() == second.generator().random()
    system = RandomSource.system()
    assert not np.array_equal(system.integers(2**62, size=4), system.integers(2**62, size=4))
    assert (first.reproducible, system.reproducible) == (True, False)


def test_describe_names_the_noise_source_and_never_a_seed():
    assert RandomSource.seeded(5).describe() | {"note": ""} == {"kind": "seeded", "note": ""}
    assert "tests only" in RandomSource.seeded(5).describe()["note"]
    assert RandomSource.system().describe() | {"note": ""} == {"kind": "system", "note": ""}


@pytest.mark.parametrize("source", [RandomSource.seeded(11), RandomSource.system()], ids=["seeded", "system"])
def test_integers_are_uniform_and_in_range(source):
    draws = source.integers(6, size=60_000)
    assert draws.dtype == np.int64 and draws.min() == 0 and draws.max() == 5
    assert chisquare(np.bincount(draws)).pvalue > 1e-4
    # 3·2**60 needs 62 bits: masking without rejection would give values up to 2**62 − 1
    big = source.integers(3 * 2**60, size=20_000)
    assert big.max() < 3 * 2**60 and np.mean(big >= 2**61) == pytest.approx(1 / 3, abs=0.02)


def test_integers_accepts_an_array_of_bounds():
    draws = RandomSource.seeded(2).integers(np.array([[1, 2], [2**62, 7]]))
    assert draws.shape == (2, 2) and draws[0, 0] == 0 and np.all(draws < [[1, 2], [2**62, 7]])
    with pytest.raises(ValueError, match="high"):
        RandomSource.seeded(2).integers(0, size=3)


def test_uniform_has_53_bits_in_unit_interval():
    values = RandomSource.seeded(4).uniform(100_000)
    assert values.min() >= 0 and values.max() < 1
    assert np.all(values * 2**53 == np.floor(values * 2**53))
    assert chisquare(np.bincount((values * 10).astype(int))).pvalue > 1e-4


@pytest.mark.parametrize("sigma", [0.01, 0.7, 1.0, 3.3, 50.0, 1e6])
def test_exact_variance_rounds_up_slightly(sigma):
    variance = exact_variance(sigma)
    assert Fraction(sigma) ** 2 <= variance < Fraction(sigma) ** 2 * (1 + Fraction(1, 2**20))
    assert variance.denominator < 2**40


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5, 9.0])
def test_discrete_gaussian_matches_its_distribution(sigma):
    draws = discrete_gaussian(sigma, 200_000, RandomSource.seeded(int(sigma * 10)))
    support = np.arange(-math.ceil(4 * sigma), math.ceil(4 * sigma) + 1)
    probabilities = discrete_gaussian_pmf(sigma, np.arange(-100, 101))
    tails = probabilities[np.arange(-100, 101) < support[0]].sum()
    pooled = probabilities[(np.arange(-100, 101) >= support[0]) & (np.arange(-100, 101) <= support[-1])]
    pooled[0] += tails
    pooled[-1] += tails
    assert_fits(draws, support, pooled)


def test_discrete_gaussian_large_sigma_moments_and_speed():
    start = time.perf_counter()
    draws = discrete_gaussian(50.0, 1_000_000, RandomSource.seeded(50))
    elapsed = time.perf_counter() - start
    print(f"\ndiscrete_gaussian: 10^6 draws at sigma=50 in {elapsed:.2f} s")
    assert draws.shape == (1_000_000,) and draws.dtype == np.int64
    assert abs(draws.mean()) < 0.5  # standard error 0.05
    assert draws.var() == pytest.approx(2500, rel=0.01)  # standard error 0.14%


def test_discrete_gaussian_huge_sigma_and_shape():
    draws = discrete_gaussian(1e8, (300, 4), RandomSource.seeded(1))
    assert draws.shape == (300, 4)
    assert 0.8e8 < draws.std() < 1.2e8


@pytest.mark.parametrize("sigma", [0.0, -1.0, 1e10, float("nan"), "2"])
def test_discrete_gaussian_rejects_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        discrete_gaussian(sigma, 3, RandomSource.seeded(0))


def test_measure_counts_adds_integer_noise_and_records_no_values():
    counts = np.arange(12, dtype=np.int64).reshape(3, 4) * 1000
    measurement = measure_counts(counts, 2.0, ("age", "sex"), RandomSource.seeded(9))
    assert isinstance(measurement, Measurement)
    assert measurement.noisy.shape == (12,) and measurement.noisy.dtype == np.int64
    assert np.all(np.abs(measurement.noisy - counts.ravel()) < 20)
    assert not np.array_equal(measurement.noisy, counts.ravel())
    assert measurement.rho == gaussian_rho(2.0)
    assert measurement.record() == {"what": ["age", "sex"], "sigma": 2.0, "rho": 0.125, "cells": 12}
    with pytest.raises(ValueError):
        measurement.noisy[0] = 0


def test_measure_counts_rejects_non_integer_counts():
    with pytest.raises(ValueError, match="integers"):
        measure_counts(np.array([1.5, 2.0]), 1.0, ("x",), RandomSource.seeded(0))


def test_exponential_mechanism_follows_softmax():
    scores, epsilon = np.array([0.0, 1.0, 3.0]), 1.0
    source = RandomSource.seeded(12)
    picks = np.array([exponential_mechanism(scores, epsilon, 1.0, source) for _ in range(20_000)])
    weights = np.exp(epsilon * scores / 2)
    assert chisquare(np.bincount(picks, minlength=3), weights / weights.sum() * picks.size).pvalue > 1e-4


def test_exponential_mechanism_validates_arguments():
    source = RandomSource.seeded(0)
    for scores in ([], [[1.0]], [1.0, np.inf]):
        with pytest.raises(ValueError, match="scores"):
            exponential_mechanism(np.array(scores), 1.0, 1.0, source)
    with pytest.raises(ValueError, match="epsilon"):
        exponential_mechanism(np.ones(3), 0.0, 1.0, source)


def test_release_threshold_value():
    # 1 + σ·Φ⁻¹(1 − δ) = 1 + 2·3.0902 = 7.18, rounded up
    assert release_threshold(2.0, 1e-3) == 8
    with pytest.raises(ValueError, match="delta"):
        release_threshold(2.0, 0.0)


def test_thresholded_counts_keeps_frequent_and_drops_rare_categories():
    counts = {"common": 5000, "frequent": 800, "rare": 1, "unique": 1}
    released = thresholded_counts(counts, 2.0, 1e-6, RandomSource.seeded(6))
    assert set(released) == {"common", "frequent"}
    assert abs(released["common"] - 5000) < 20 and isinstance(released["common"], int)


def test_thresholded_counts_of_nothing_is_nothing():
    assert thresholded_counts({}, 2.0, 1e-6, RandomSource.seeded(6)) == {}
