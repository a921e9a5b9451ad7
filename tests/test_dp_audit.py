"""White-box DP audits at ε = 1: each mechanism passes, and a copy drawing half the noise is caught.

Each audit draws many outputs on neighbouring inputs D and D' = D + one canary row (independent cells of one
vectorised call stand in for independent runs) and counts one event declared before the draws: the outputs
where the likelihood ratio of the half-noise copy is highest (the most powerful test against it), as many as
the sample can resolve. The same event is counted on the real mechanism, whose bound must stay below ε.
Sources are seeded so the tests are reproducible; the product's noise always comes from the OS CSPRNG.
"""

import dataclasses

import numpy as np
import pytest
import torch
from scipy.stats import norm

from tabsynth.privacy.accounting import (
    dpsgd_epsilon,
    dpsgd_noise_multiplier,
    exponential_epsilon,
    exponential_rho,
    gaussian_rho,
    gaussian_sigma,
    zcdp_epsilon,
    zcdp_rho,
)
from tabsynth.privacy.audit import epsilon_lower_bound, event_epsilon, likelihood_ratio_event
from tabsynth.privacy.bounds import range_histogram
from tabsynth.privacy.dpsgd import gaussian_noise
from tabsynth.privacy.mechanisms import (
    RandomSource,
    discrete_gaussian,
    exact_variance,
    exponential_mechanism,
    measure_counts,
    release_threshold,
    thresholded_counts,
)
from tabsynth.table.schema import Column

EPSILON, DELTA = 1.0, 1e-5
ALPHA = 0.05 / 4  # 95 % confidence over the four one-sided intervals of one event


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


def test_event_epsilon_reads_both_directions_and_respects_delta():
    assert event_epsilon(900, 100, 1000, 1e-6, 0.01) == event_epsilon(100, 900, 1000, 1e-6, 0.01) > 1.5
    assert event_epsilon(100, 100, 1000, 1e-6, 0.01) == 0.0
    assert event_epsilon(0, 10, 1000, 0.05, 0.01) == 0.0  # ten hits in a thousand are within δ = 0.05


def test_likelihood_ratio_event_takes_the_outputs_the_canary_makes_likelier():
    p_without, p_with = np.array([0.5, 0.3, 0.15, 0.05]), np.array([0.05, 0.15, 0.3, 0.5])
    assert likelihood_ratio_event(p_without, p_with, 100_000, 1e-6, ALPHA).tolist() == [False, False, False, True]
    impossible_without = np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.0, 0.5, 0.0, 0.5])
    assert likelihood_ratio_event(*impossible_without, 1000, 1e-6, ALPHA).tolist() == [False, False, False, True]


def hit_counts(event_outputs: np.ndarray, without: np.ndarray, with_canary: np.ndarray) -> tuple[int, int]:
    return int(np.isin(without, event_outputs).sum()), int(np.isin(with_canary, event_outputs).sum())


def discrete_gaussian_pmf(sigma: float, support: np.ndarray, shift: int = 0) -> np.ndarray:
    weights = np.exp(-((support - shift) ** 2) / (2 * float(exact_variance(sigma))))
    return weights / weights.sum()


COUNT_DRAWS = 400_000
SUPPORT = np.arange(-100, 102)


def measure_counts_half_noise(counts, sigma, what, source):
    """Broken on purpose: claims `sigma` but draws noise of scale sigma / 2."""
    return measure_counts(counts, sigma / 2, what, source)


def audit_counts(measure, sigma: float, event_outputs: np.ndarray) -> float:
    """One cell counted 0 times in D and once in D'."""
    source = RandomSource.seeded(20)
    without = measure(np.zeros(COUNT_DRAWS, dtype=np.int64), sigma, ("cell",), source).noisy
    with_canary = measure(np.ones(COUNT_DRAWS, dtype=np.int64), sigma, ("cell",), source).noisy
    return event_epsilon(*hit_counts(event_outputs, without, with_canary), COUNT_DRAWS, DELTA, ALPHA)


@pytest.mark.slow
def test_measure_counts_passes_audit_at_epsilon_one_and_half_noise_fails():
    sigma = gaussian_sigma(zcdp_rho(EPSILON, DELTA))
    half = discrete_gaussian_pmf(sigma / 2, SUPPORT), discrete_gaussian_pmf(sigma / 2, SUPPORT, shift=1)
    event = SUPPORT[likelihood_ratio_event(*half, COUNT_DRAWS, DELTA, ALPHA)]
    assert audit_counts(measure_counts, sigma, event) < EPSILON
    assert audit_counts(measure_counts_half_noise, sigma, event) > EPSILON


def range_histogram_half_noise(column, counts, rho, source):
    """Broken on purpose: claims `rho` but draws the noise of 4·rho (half the scale)."""
    return dataclasses.replace(range_histogram(column, counts, 4 * rho, source), rho=rho)


def audit_range_histogram(histogram, event_outputs: np.ndarray) -> float:
    """A number column's range histogram (both bounds undeclared) at the cost of ε = 1: one bucket counted 0 times
    in D and once in D'. Its bounds are post-processing of this histogram."""
    column = Column(name="x", kind="numerical", dtype="float64", reason="audit", missing=None)
    rho, source = zcdp_rho(EPSILON, DELTA), RandomSource.seeded(70)
    sides = [histogram(column, np.full(COUNT_DRAWS, held, dtype=np.int64), rho, source) for held in (0, 1)]
    assert all(side.rho == pytest.approx(rho) for side in sides)  # what the ledger is charged
    return event_epsilon(*hit_counts(event_outputs, *(side.noisy for side in sides)), COUNT_DRAWS, DELTA, ALPHA)


@pytest.mark.slow
def test_range_histogram_passes_audit_at_epsilon_one_and_half_noise_fails():
    sigma = gaussian_sigma(zcdp_rho(EPSILON, DELTA))
    half = discrete_gaussian_pmf(sigma / 2, SUPPORT), discrete_gaussian_pmf(sigma / 2, SUPPORT, shift=1)
    event = SUPPORT[likelihood_ratio_event(*half, COUNT_DRAWS, DELTA, ALPHA)]
    assert audit_range_histogram(range_histogram, event) < EPSILON
    assert audit_range_histogram(range_histogram_half_noise, event) > EPSILON


# the exponential mechanism (AIM's choice of marginals): each of CHOICES scores moves by at most 1 when one row
# is added; the worst case raises one score and lowers all the others
CHOICES, CHOICE_DRAWS = 50, 20_000
CHOICE_SCORES = np.zeros(CHOICES), np.append(1.0, -np.ones(CHOICES - 1))


def choice_probabilities(scores: np.ndarray, epsilon: float, noise_scale: float = 1.0) -> np.ndarray:
    """Exact output distribution of the choice (Gumbel-max = softmax of ε·score/2)."""
    weights = np.exp(epsilon * (scores - scores.max()) / (2 * noise_scale))
    return weights / weights.sum()


def choose_half_noise(scores, epsilon, sensitivity, source):
    """Broken on purpose: Gumbel noise of half the scale the exponential mechanism needs."""
    return exponential_mechanism(scores, 2 * epsilon, sensitivity, source)


def audit_choice(choose, event: np.ndarray) -> float:
    epsilon = exponential_epsilon(exponential_rho(EPSILON))  # the ε of the ρ a choice is charged
    source = RandomSource.seeded(30)
    sides = [np.array([choose(scores, epsilon, 1.0, source) for _ in range(CHOICE_DRAWS)])
             for scores in CHOICE_SCORES]
    return event_epsilon(*hit_counts(np.flatnonzero(event), *sides), CHOICE_DRAWS, DELTA, ALPHA)


def test_exponential_mechanism_passes_audit_at_epsilon_one_and_half_noise_fails():
    half = [choice_probabilities(scores, EPSILON, noise_scale=0.5) for scores in CHOICE_SCORES]
    event = likelihood_ratio_event(*half, CHOICE_DRAWS, DELTA, ALPHA)
    assert audit_choice(exponential_mechanism, event) < EPSILON
    assert audit_choice(choose_half_noise, event) > EPSILON


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
    sigma, delta = gaussian_sigma(zcdp_rho(EPSILON, DELTA)), 1e-6
    claimed = zcdp_epsilon(gaussian_rho(sigma), DELTA)  # the Gaussian part; the threshold adds its δ
    absent = np.zeros(100_000)  # without the canary row its category does not exist
    honest = released_canaries(thresholded_counts, sigma, delta)
    assert np.mean(honest > 0) <= delta
    assert epsilon_lower_bound(absent, honest, DELTA + delta) < claimed
    broken = released_canaries(release_above_one, sigma, delta)
    assert np.mean(broken > 0) > 0.3
    assert epsilon_lower_bound(absent, broken, DELTA + delta) > claimed


def thresholded_half_noise(counts, sigma, delta, source):
    """Broken on purpose: claims `sigma` but releases with noise (and threshold) for sigma / 2."""
    return thresholded_counts(counts, sigma / 2, delta, source)


def audit_thresholded(release, sigma: float, count: int, delta: float, event_outputs: np.ndarray) -> float:
    """A released category counted `count` times in D and once more in D'; 0 stands for 'suppressed'."""
    source, sides = RandomSource.seeded(50), []
    for held in (count, count + 1):
        released = release({i: held for i in range(COUNT_DRAWS)}, sigma, delta, source)
        sides.append(np.array([released.get(i, 0) for i in range(COUNT_DRAWS)]))
    return event_epsilon(*hit_counts(event_outputs, *sides), COUNT_DRAWS, DELTA + delta, ALPHA)


@pytest.mark.slow
def test_thresholded_counts_pass_audit_at_epsilon_one_and_half_noise_fails():
    sigma, delta = gaussian_sigma(zcdp_rho(EPSILON, DELTA)), 1e-6
    count = release_threshold(sigma, delta)  # about half the draws are suppressed
    support = count + SUPPORT
    half = []
    for shift in (0, 1):  # the half-noise copy's outputs, values at or below its threshold as 0
        pmf = discrete_gaussian_pmf(sigma / 2, SUPPORT, shift)
        suppressed = support <= release_threshold(sigma / 2, delta)
        half.append(np.append(pmf[~suppressed], pmf[suppressed].sum()))
    outputs = np.append(support[support > release_threshold(sigma / 2, delta)], 0)
    event = outputs[likelihood_ratio_event(*half, COUNT_DRAWS, DELTA + delta, ALPHA)]
    assert audit_thresholded(thresholded_counts, sigma, count, delta, event) < EPSILON
    assert audit_thresholded(thresholded_half_noise, sigma, count, delta, event) > EPSILON


# DP-SGD: one full-batch step; the clipped gradient sum is 0 without the canary and C = 1 with it
SGD_DRAWS, SGD_BIN = 1_000_000, 0.05


def gaussian_noise_half(source, std, like):
    """Broken on purpose: half the standard deviation DP-SGD asked for."""
    return gaussian_noise(source, std / 2, like)


def audit_dpsgd_step(noise, multiplier: float, event_bins: np.ndarray) -> float:
    source, zeros = RandomSource.seeded(60), torch.zeros(SGD_DRAWS, dtype=torch.float64)
    sides = [shift + noise(source, multiplier, zeros).numpy() for shift in (0.0, 1.0)]
    return event_epsilon(*hit_counts(event_bins, *(np.floor(s / SGD_BIN) for s in sides)), SGD_DRAWS, DELTA, ALPHA)


@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")  # one step: the bound is loose
def test_dpsgd_noise_passes_audit_at_epsilon_one_and_half_noise_fails():
    multiplier = dpsgd_noise_multiplier(EPSILON, DELTA, sample_rate=1.0, steps=1)
    assert dpsgd_epsilon(multiplier, 1.0, 1, DELTA) <= EPSILON
    bins = np.arange(np.floor(-12 * multiplier / SGD_BIN), np.ceil(12 * multiplier / SGD_BIN) + 1)
    half = [np.diff(norm.cdf(np.append(bins, bins[-1] + 1) * SGD_BIN, loc=shift, scale=multiplier / 2))
            for shift in (0.0, 1.0)]
    event = bins[likelihood_ratio_event(*half, SGD_DRAWS, DELTA, ALPHA)]
    assert audit_dpsgd_step(gaussian_noise, multiplier, event) < EPSILON
    assert audit_dpsgd_step(gaussian_noise_half, multiplier, event) > EPSILON
