"""Noise mechanisms: an exact discrete Gaussian, noisy counts, the exponential mechanism, thresholded release.

Every mechanism draws its randomness from a `RandomSource` (the OS CSPRNG on every product path; a seeded source
is for tests only), and the discrete Gaussian decides with integer arithmetic only (Canonne, Kamath & Steinke
2020, Algorithms 1–3).
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tabsynth.privacy.accounting import check_delta, check_positive, gaussian_rho

_MAX_HIGH = 2**62
_VARIANCE_PRECISION = 2**20  # σ² is rounded up by a relative amount below 1/_VARIANCE_PRECISION
_SIGMA_RANGE = (0.01, 1e9)  # keeps every integer of the sampler within int64


class RandomSource:
    """Where DP noise comes from: the OS CSPRNG (`system()`). `seeded(seed)` is for tests only: anyone who knows
    or guesses a seed removes the noise, so no CLI, pipeline or engine code constructs one
    (tests/test_dp_randomness.py holds that), and a user's `--seed` never reaches DP noise."""

    def __init__(self, seed: int | None = None):
        """Use `RandomSource.system()`; `RandomSource.seeded(seed)` in tests."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self._seed = seed
        self._rng = None if seed is None else np.random.Generator(np.random.PCG64(seed))

    @classmethod
    def system(cls) -> RandomSource:
        """Noise from the operating system's CSPRNG (os.urandom); not reproducible."""
        return cls()

    @classmethod
    def seeded(cls, seed: int) -> RandomSource:
        """Test only: reproducible noise from numpy PCG64 (no privacy against anyone who knows the seed)."""
        return cls(seed)

    @property
    def reproducible(self) -> bool:
        return self._rng is not None

    def words(self, count: int) -> np.ndarray:
        """`count` independent uniform 64-bit words (uint64)."""
        if self._rng is None:
            return np.frombuffer(os.urandom(8 * count), dtype=np.uint64)
        return self._rng.bit_generator.random_raw(count)

    def integers(self, high, size=None) -> np.ndarray:
        """Uniform int64 on [0, high), `high` an int or int64 array up to 2**62; exact (masking and rejection)."""
        high = np.asarray(high, dtype=np.int64)
        shape = high.shape if size is None else tuple(np.atleast_1d(size))
        high = np.broadcast_to(high, shape).ravel()
        if high.size and (high.min() < 1 or high.max() > _MAX_HIGH):
            raise ValueError(f"high must be between 1 and 2**62, got values in [{high.min()}, {high.max()}]")
        mask = _all_ones_below(high - 1)
        out = np.empty(high.size, dtype=np.int64)
        todo = np.arange(high.size)
        while todo.size:
            draw = (self.words(todo.size) & mask[todo]).astype(np.int64)
            accepted = draw < high[todo]
            out[todo[accepted]] = draw[accepted]
            todo = todo[~accepted]
        return out.reshape(shape)

    def uniform(self, size=None) -> np.ndarray:
        """float64 uniform on [0, 1) with 53 random bits."""
        count = math.prod(np.atleast_1d(size)) if size is not None else 1
        values = (self.words(count) >> np.uint64(11)) * 2.0**-53
        return values.reshape(() if size is None else size)

    def generator(self) -> np.random.Generator:
        """A numpy Generator for non-private post-processing: a child of the seed, or fresh OS entropy."""
        return np.random.default_rng() if self._rng is None else self._rng.spawn(1)[0]

    def describe(self) -> dict:
        """Manifest entry: where the noise came from (never a seed)."""
        if self._rng is None:
            return {"kind": "system", "note": "DP noise from the operating system CSPRNG (os.urandom), drawn afresh "
                                              "for this fit; no seed exists, is stored or can be derived"}
        return {"kind": "seeded", "note": "a seeded test stream (RandomSource.seeded): not private; tests only"}

    def __repr__(self) -> str:
        return "RandomSource.system()" if self._rng is None else f"RandomSource.seeded({self._seed})"


def exact_variance(sigma: float) -> Fraction:
    """The variance parameter the discrete Gaussian sampler really uses: σ² rounded up to a rational (more privacy)."""
    scale, steps, denominator = _sampler_parameters(sigma)
    return Fraction(scale * steps, denominator)


def discrete_gaussian(sigma: float, size, source: RandomSource) -> np.ndarray:
    """Exact draws from P(x) ∝ exp(−x²/(2σ²)) over the integers, σ² = exact_variance(sigma) (CKS Algorithm 3)."""
    scale, steps, denominator = _sampler_parameters(sigma)
    divisor = 2 * scale * steps * denominator

    def propose(batch: int) -> np.ndarray:
        candidate = _discrete_laplace(scale, batch, source)
        # accept with probability exp(−(|y| − σ²/t)² / (2σ²)) = exp(−gap² / (2·t·m·d)) where σ² = t·m/d
        gap = np.abs(candidate) * denominator - steps
        return candidate[_bernoulli_exp(*_divmod_square(gap, divisor), divisor, source)]

    shape = tuple(np.atleast_1d(size))
    return _collect(math.prod(shape), propose).reshape(shape)


@dataclass(frozen=True, eq=False)
class Measurement:
    """Noisy counts of one query (flattened C-order over `what`) and the noise that protects them."""

    what: tuple[str, ...]
    noisy: np.ndarray
    sigma: float
    rho: float

    def __post_init__(self):
        noisy = np.array(self.noisy)
        noisy.flags.writeable = False
        object.__setattr__(self, "noisy", noisy)
        object.__setattr__(self, "what", tuple(self.what))

    def record(self) -> dict:
        """Manifest entry: what was measured and at what cost, never the values."""
        return {"what": list(self.what), "sigma": self.sigma, "rho": self.rho, "cells": int(self.noisy.size)}


def measure_counts(counts: np.ndarray, sigma: float, what: tuple[str, ...], source: RandomSource) -> Measurement:
    """Integer counts plus discrete Gaussian noise; ρ = gaussian_rho(sigma) when one row changes one cell by 1."""
    counts = np.asarray(counts)
    if counts.dtype.kind not in "iu":
        raise ValueError(f"counts must be integers, got dtype {counts.dtype}")
    noisy = counts.astype(np.int64).ravel() + discrete_gaussian(sigma, counts.size, source)
    return Measurement(what=tuple(what), noisy=noisy, sigma=float(sigma), rho=gaussian_rho(sigma))


def exponential_mechanism(scores: np.ndarray, epsilon: float, sensitivity: float, source: RandomSource) -> int:
    """ε-DP choice of an index, higher score better, by Gumbel-max; charge exponential_rho(epsilon)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError("scores must be a non-empty 1-D array of finite numbers")
    check_positive("epsilon", epsilon)
    check_positive("sensitivity", sensitivity)
    with np.errstate(divide="ignore"):
        gumbel = -np.log(-np.log(source.uniform(scores.size)))
    return int(np.argmax(epsilon * scores / (2.0 * sensitivity) + gumbel))


def release_threshold(sigma: float, delta: float) -> int:
    """τ such that a category held by one row passes `noisy count > τ` with probability at most δ."""
    from scipy.stats import norm  # here, not at the top: scipy.stats takes 0.7 s to import, sampling never needs it

    check_delta(delta)
    # P(Z ≥ k) ≤ P(N(0, σ²) ≥ k − 1) for the discrete Gaussian, with σ the variance the sampler really uses
    return math.ceil(1 + math.sqrt(exact_variance(sigma)) * norm.isf(delta))


def thresholded_counts(counts: dict, sigma: float, delta: float, source: RandomSource) -> dict:
    """Noisy counts of the categories whose noisy count exceeds release_threshold(sigma, delta).

    For category lists that are not public. Cost: ρ = gaussian_rho(sigma) plus δ (a category only the added row
    holds appears with probability at most δ; otherwise this is the Gaussian mechanism and post-processing).
    """
    threshold = release_threshold(sigma, delta)
    observed = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    noisy = observed + discrete_gaussian(sigma, observed.size, source)
    return {category: int(value) for category, value in zip(counts, noisy, strict=True) if value > threshold}


def _sampler_parameters(sigma: float) -> tuple[int, int, int]:
    """(t, m, d) with σ² ≤ t·m/d < σ²·(1 + 2**-20) and t = ⌊σ⌋ + 1, the discrete Laplace scale of CKS."""
    low, high = _SIGMA_RANGE
    if not (isinstance(sigma, numbers.Real) and low <= sigma <= high):
        raise ValueError(f"sigma must be a number between {low} and {high:g}, got {sigma!r}")
    variance = Fraction(sigma) ** 2
    scale = math.floor(sigma) + 1
    denominator = math.ceil(_VARIANCE_PRECISION * scale / variance)
    return scale, math.ceil(variance * denominator / scale), denominator


def _discrete_laplace(scale: int, count: int, source: RandomSource) -> np.ndarray:
    """`count` exact draws from P(x) ∝ exp(−|x|/scale) (CKS Algorithm 2)."""

    def propose(batch: int) -> np.ndarray:
        fraction = source.integers(scale, size=batch)
        fraction = fraction[_bernoulli_exp(np.zeros_like(fraction), fraction, scale, source)]
        magnitude = fraction + scale * _exp_successes(fraction.size, source)
        negative = source.integers(2, size=magnitude.size) == 1
        return np.where(negative, -magnitude, magnitude)[~(negative & (magnitude == 0))]

    return _collect(count, propose)


def _collect(count: int, propose) -> np.ndarray:
    """Rejection sampling: `propose(k)` returns the accepted draws among k i.i.d. proposals; gather `count`."""
    accepted, missing = [np.empty(0, dtype=np.int64)], count
    while missing:
        accepted.append(propose(missing))
        missing -= accepted[-1].size
    return np.concatenate(accepted)


def _exp_successes(count: int, source: RandomSource) -> np.ndarray:
    """Successes of Bernoulli(exp(−1)) before the first failure: P(V ≥ v) = exp(−v)."""
    successes = np.zeros(count, dtype=np.int64)
    active = np.arange(count)
    while active.size:
        ones = np.ones(active.size, dtype=np.int64)
        active = active[_bernoulli_exp_fraction(ones, ones, source)]
        successes[active] += 1
    return successes


def _bernoulli_exp(whole: np.ndarray, numerator: np.ndarray, denominator, source: RandomSource) -> np.ndarray:
    """Bernoulli(exp(−(whole + numerator/denominator))), numerator ≤ denominator (CKS Algorithm 1)."""
    accepted = _bernoulli_exp_fraction(numerator, np.broadcast_to(denominator, numerator.shape), source)
    level = 0
    while True:
        level += 1
        survivors = np.flatnonzero(accepted & (whole >= level))
        if survivors.size == 0:
            return accepted
        ones = np.ones(survivors.size, dtype=np.int64)
        accepted[survivors] = _bernoulli_exp_fraction(ones, ones, source)


def _bernoulli_exp_fraction(numerator: np.ndarray, denominator: np.ndarray, source: RandomSource) -> np.ndarray:
    """Bernoulli(exp(−γ)), γ = numerator/denominator ∈ [0, 1]: the first failing k of Bernoulli(γ/k) is odd."""
    k = np.ones(numerator.size, dtype=np.int64)
    active = np.arange(numerator.size)
    while active.size:
        # Bernoulli(γ/k) as the product of independent Bernoulli(γ) and Bernoulli(1/k): no big denominators
        success = source.integers(denominator[active]) < numerator[active]
        success &= source.integers(k[active]) == 0
        active = active[success]
        k[active] += 1
    return k % 2 == 1


def _divmod_square(values: np.ndarray, divisor: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (v² // divisor, v² % divisor), with Python integers where v² would overflow int64."""
    small = np.abs(values) < 2**31
    if small.all():
        return np.divmod(values * values, divisor)
    squares = values.astype(object) ** 2
    whole, remainder = (squares // divisor), (squares % divisor)
    return whole.astype(np.int64), remainder.astype(np.int64)


def _all_ones_below(values: np.ndarray) -> np.ndarray:
    """For each v ≥ 0, the uint64 mask 2**bit_length(v) − 1 (smallest all-ones number ≥ v)."""
    mask = values.astype(np.uint64)
    for shift in (1, 2, 4, 8, 16, 32):
        mask |= mask >> np.uint64(shift)
    return mask
