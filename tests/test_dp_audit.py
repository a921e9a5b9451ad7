"""Empirical DP audits: each mechanism passes at its claimed ε, and a deliberately broken copy is caught.

Each audit draws many outputs on neighbouring inputs D and D' = D + one canary row. Independent cells of one
vectorised call stand in for independent runs of the mechanism.
"""

import numpy as np
import pytest

from tabsynth.privacy.accounting import gaussian_rho, gaussian_sigma, zcdp_epsilon, zcdp_rho
from tabsynth.privacy.audit import epsilon_lower_bound
from tabsynth.privacy.mechanisms import (
    RandomSource,
    discrete_gaussian,
    exponential_mechanism,
    measure_counts,
    thresholded_counts,
)

TRIALS = 400_000


def test_audit_recovers_randomized_response_epsilon():
    # randomized response with ε = 1: the best test is the output itself, and it is exactly ε-DP
    rng = np.random.default_rng(0)
    keep = np.exp(1.0) / (1 + np.exp(1.0))
    without, with_canary = rng.random(200_000) > keep, rng.random(200_000) < keep
    assert 0.9 < epsilon_lower_bound(without, with_canary, delta=1e-6) <= 1.0


def test_audit_finds_nothing_between_identical_mechanisms():
    rng = np.random.default_rng(1)
    assert epsilon_lower_bound(rng.normal(size=50_000), rng.normal(size=50_000), delta=1e-6) < 0.1


def test_audit_bound_is_limited_by_sample_size():
    # perfectly distinguishable outputs: with 500 trials per half no more than log(500 / 3) can be shown
    bound = epsilon_lower_bound(np.zeros(1000), np.ones(1000), delta=1e-6)
    assert 4.0 < bound < np.log(500 / 3)


@pytest.mark.parametrize(("without", "with_canary", "delta"), [([1.0], [1.0, 2.0], 0.1), ([1, 2], [3, np.nan], 0.1),
                                                              ([1, 2], [3, 4], 0.0)])
def test_audit_rejects_bad_input(without, with_canary, delta):
    with pytest.raises(ValueError):
        epsilon_lower_bound(without, with_canary, delta=delta)


def audit_counts(sigma: float, delta: float) -> float:
    """One cell counted 0 times in D and once in D'."""
    source = RandomSource.seeded(20)
    without = measure_counts(np.zeros(TRIALS, dtype=np.int64), sigma, ("cell",), source).noisy
    with_canary = measure_counts(np.ones(TRIALS, dtype=np.int64), sigma, ("cell",), source).noisy
    return epsilon_lower_bound(without, with_canary, delta)


def test_measure_counts_passes_audit_and_half_noise_fails():
    epsilon, delta = 3.0, 1e-5  # ε = 3 keeps both checks decisive at 4·10^5 trials (about 1.9 and 4.1)
    sigma = gaussian_sigma(zcdp_rho(epsilon, delta))
    assert audit_counts(sigma, delta) < epsilon
    assert audit_counts(sigma / 2, delta) > epsilon


def audit_exponential(epsilon_used: float, trials: int = 20_000) -> float:
    """Ten candidates; the canary lifts candidate 0 by the sensitivity and lowers the others by it."""
    source = RandomSource.seeded(30)
    scores_without = np.array([0.0] + [1.0] * 9)
    scores_with = np.array([1.0] + [0.0] * 9)
    without = [exponential_mechanism(scores_without, epsilon_used, 1.0, source) for _ in range(trials)]
    with_canary = [exponential_mechanism(scores_with, epsilon_used, 1.0, source) for _ in range(trials)]
    return epsilon_lower_bound(without, with_canary, delta=1e-6)


def test_exponential_mechanism_passes_audit_and_doubled_epsilon_fails():
    epsilon = 1.0
    assert audit_exponential(epsilon) < epsilon
    assert audit_exponential(2 * epsilon) > epsilon


def released_canaries(release, sigma: float, delta: float, trials: int = 100_000) -> np.ndarray:
    """Noisy count of each of `trials` canary categories held by one row, 0 where the category was not released."""
    counts = {f"canary-{i}": 1 for i in range(trials)}
    released = release(counts, sigma, delta, RandomSource.seeded(40))
    return np.array([released.get(category, 0) for category in counts])


def release_above_one(counts: dict, sigma: float, delta: float, source: RandomSource) -> dict:
    """Deliberately broken: threshold 1 instead of 1 + σ·Φ⁻¹(1 − δ)."""
    noisy = np.fromiter(counts.values(), dtype=np.int64) + discrete_gaussian(sigma, len(counts), source)
    return {category: int(value) for category, value in zip(counts, noisy, strict=True) if value > 1}


def test_thresholded_counts_hides_unique_categories_and_threshold_one_fails():
    sigma, delta = 2.0, 1e-3
    claimed = zcdp_epsilon(gaussian_rho(sigma), delta)  # the Gaussian part; the threshold adds δ
    absent = np.zeros(100_000)  # without the canary row its category does not exist
    honest = released_canaries(thresholded_counts, sigma, delta)
    assert np.mean(honest > 0) <= delta
    assert epsilon_lower_bound(absent, honest, 2 * delta) < claimed
    broken = released_canaries(release_above_one, sigma, delta)
    assert np.mean(broken > 0) > 0.3
    assert epsilon_lower_bound(absent, broken, 2 * delta) > claimed
