"""Empirical lower bounds on ε: a statistical test that a mechanism is no more private than it claims.

A mechanism is run many times on neighbouring inputs D and D' (D plus one canary row). Any set S of outputs
gives ε ≥ log((P_D'(S) − δ) / P_D(S)), and the same with D and D' swapped. We try threshold sets {x ≥ t} and
{x ≤ t}, bound both probabilities with Clopper–Pearson intervals, and report the best bound. Half of the draws
choose the test and the other half bound it, so searching over thresholds does not inflate the confidence.
If the lower bound exceeds the claimed ε, the mechanism (or its accounting) is broken.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta

from tabsynth.privacy.accounting import check_delta

_MAX_THRESHOLDS = 2000


def epsilon_lower_bound(outputs_without, outputs_with, delta: float, confidence: float = 0.95) -> float:
    """A lower bound on ε, holding with probability `confidence`, from scalar outputs on D and on D' = D + canary."""
    check_delta(delta)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    without, with_canary = _as_sample(outputs_without, "outputs_without"), _as_sample(outputs_with, "outputs_with")
    choose_without, bound_without = np.array_split(without, 2)
    choose_with, bound_with = np.array_split(with_canary, 2)
    # each of the two Clopper–Pearson bounds may fail with half the allowed error
    alpha = (1.0 - confidence) / 2.0
    thresholds = _candidate_thresholds(np.concatenate([choose_without, choose_with]))
    bounds = _test_bounds(choose_without, choose_with, thresholds, delta, alpha)
    family, index = np.unravel_index(np.argmax(bounds), bounds.shape)
    best = _test_bounds(bound_without, bound_with, thresholds[index : index + 1], delta, alpha)[family, 0]
    return max(0.0, float(best))


def event_epsilon(hits_without: int, hits_with: int, runs: int, delta: float, alpha: float) -> float:
    """The ε lower bound shown by one event declared before the runs: the larger of log((lower CP bound of one
    side's hit rate − δ) / upper CP bound of the other's) over both directions; 0 when nothing is shown. Each of
    the four one-sided Clopper–Pearson intervals may fail with probability `alpha`."""
    hits = np.array([hits_with, hits_without])
    ratios = _log_ratio_bound(hits, runs, hits[::-1], runs, delta, alpha)
    return max(0.0, float(np.max(ratios)))


def likelihood_ratio_event(p_without: np.ndarray, p_with: np.ndarray, draws: int, delta: float,
                           alpha: float) -> np.ndarray:
    """The outputs (a boolean mask over the outcomes of `p_without` and `p_with`, the two output distributions)
    where the likelihood ratio p_with / p_without is highest, as many as give the largest expected ε bound from
    `draws` draws per side: the most powerful test (Neyman–Pearson), its size fitted to the sample. Compute the
    probabilities of the mechanism you want to catch, then count the event on the mechanism under test."""
    p_without, p_with = np.asarray(p_without, dtype=float), np.asarray(p_with, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p_without > 0, p_with / p_without, np.where(p_with > 0, np.inf, 0.0))
    order = np.argsort(-ratio, kind="stable")
    expected_with = np.round(np.cumsum(p_with[order]) * draws)
    expected_without = np.round(np.cumsum(p_without[order]) * draws)
    bounds = _log_ratio_bound(expected_with, draws, expected_without, draws, delta, alpha)
    mask = np.zeros(p_with.size, dtype=bool)
    mask[order[: int(np.argmax(bounds)) + 1]] = True
    return mask


def _test_bounds(without: np.ndarray, with_canary: np.ndarray, thresholds: np.ndarray, delta: float,
                 alpha: float) -> np.ndarray:
    """ε bounds, shape (4, thresholds): sets {x ≥ t} and {x ≤ t}, each with D' over D and D over D'."""
    at_least_without, at_most_without = _tail_counts(without, thresholds)
    at_least_with, at_most_with = _tail_counts(with_canary, thresholds)
    n_without, n_with = without.size, with_canary.size
    return np.stack([
        _log_ratio_bound(at_least_with, n_with, at_least_without, n_without, delta, alpha),
        _log_ratio_bound(at_least_without, n_without, at_least_with, n_with, delta, alpha),
        _log_ratio_bound(at_most_with, n_with, at_most_without, n_without, delta, alpha),
        _log_ratio_bound(at_most_without, n_without, at_most_with, n_with, delta, alpha),
    ])


def _log_ratio_bound(hits_high: np.ndarray, n_high: int, hits_low: np.ndarray, n_low: int, delta: float,
                     alpha: float) -> np.ndarray:
    """log((lower CP bound of p_high − δ) / upper CP bound of p_low), −inf where the numerator is not positive."""
    numerator = clopper_pearson_lower(hits_high, n_high, alpha) - delta
    denominator = clopper_pearson_upper(hits_low, n_low, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(numerator > 0, np.log(np.maximum(numerator, 1e-300) / denominator), -math.inf)


def clopper_pearson_lower(hits: np.ndarray, trials: int, alpha: float) -> np.ndarray:
    return np.where(hits > 0, beta.ppf(alpha, np.maximum(hits, 1), trials - hits + 1), 0.0)


def clopper_pearson_upper(hits: np.ndarray, trials: int, alpha: float) -> np.ndarray:
    return np.where(hits < trials, beta.ppf(1.0 - alpha, hits + 1, np.maximum(trials - hits, 1)), 1.0)


def _tail_counts(sample: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many outputs are ≥ t and how many are ≤ t, for each threshold t."""
    ordered = np.sort(sample)
    at_least = ordered.size - np.searchsorted(ordered, thresholds, side="left")
    at_most = np.searchsorted(ordered, thresholds, side="right")
    return at_least, at_most


def _candidate_thresholds(pooled: np.ndarray) -> np.ndarray:
    """Distinct pooled outputs; when there are many, a subset dense in both tails, where the best tests lie."""
    distinct = np.unique(pooled)
    if distinct.size <= _MAX_THRESHOLDS:
        return distinct
    offsets = np.unique(np.geomspace(1, distinct.size, _MAX_THRESHOLDS // 2).astype(np.int64)) - 1
    return distinct[np.unique(np.concatenate([offsets, distinct.size - 1 - offsets]))]


def _as_sample(values, name: str) -> np.ndarray:
    sample = np.asarray(values, dtype=np.float64).ravel()
    if sample.size < 2 or not np.all(np.isfinite(sample)):
        raise ValueError(f"{name} must hold at least 2 finite numbers")
    return sample
