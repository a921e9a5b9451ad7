"""DP-SGD planned and accounted together with zCDP measurements, as one Rényi-DP curve.

ρ-zCDP is ρ·α at every Rényi order α; opacus gives each DP-SGD step's curve; the sum is converted to
(ε, δ) once. `plan_dpsgd` finds the noise multiplier and the number of steps that keep ε within budget.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

from tabsynth.errors import ModelError
from tabsynth.privacy.mechanisms import RandomSource

ORDERS = np.concatenate([np.arange(1.5, 10.0, 0.5), np.arange(10, 64), [80, 96, 128, 192, 256, 512, 1024]])
MIN_NOISE, MAX_NOISE = 0.3, 2.0**20  # the noise multipliers searched


def composed_epsilon(rho: float, history: Sequence[tuple[float, float, int]], delta: float) -> float:
    """ε at `delta` of ρ-zCDP followed by DP-SGD runs (noise multiplier, sample rate, steps), by RDP."""
    rdp = rho * ORDERS + sum((steps * step_rdp(sigma, rate) for sigma, rate, steps in history), np.zeros(len(ORDERS)))
    return rdp_epsilon(rdp, delta)


def step_rdp(noise_multiplier: float, sample_rate: float) -> np.ndarray:
    """RDP at `ORDERS` of one DP-SGD step; T steps cost T times as much."""
    return np.asarray(compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=ORDERS))


def rdp_epsilon(rdp: np.ndarray, delta: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus warns when the best order is the first or last: a looser bound
        return float(get_privacy_spent(orders=ORDERS, rdp=rdp, delta=delta)[0])


@dataclass(frozen=True)
class DpSgdPlan:
    noise_multiplier: float
    sample_rate: float
    steps: int  # what the budget allows, at most `planned`
    planned: int  # the epoch cap in steps


def plan_dpsgd(epsilon: float, delta: float, rho: float, sample_rate: float, planned: int,
               noise_multiplier: float | None) -> DpSgdPlan:
    """The noise multiplier (unless given: the smallest that pays for `planned` steps after ρ-zCDP) and the
    number of steps, at most `planned`, after which ε at `delta` still stays within `epsilon`."""
    def fits(sigma: float, steps: int, per_step: np.ndarray | None = None) -> bool:
        per_step = step_rdp(sigma, sample_rate) if per_step is None else per_step
        return rdp_epsilon(rho * ORDERS + steps * per_step, delta) <= epsilon

    if noise_multiplier is None:
        noise_multiplier = _smallest_noise(lambda sigma: fits(sigma, planned))
    per_step = step_rdp(noise_multiplier, sample_rate)
    low, high = 0, planned + 1  # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(noise_multiplier, middle, per_step) else (low, middle)
    return DpSgdPlan(float(noise_multiplier), sample_rate, low, planned)


def _smallest_noise(enough) -> float:
    """The smallest noise multiplier (to 1%, at least MIN_NOISE) for which `enough`, a monotone test, holds."""
    high = 1.0
    while not enough(high):
        high *= 2.0
        if high > MAX_NOISE:
            raise ModelError("the privacy budget leaves too little for DP-SGD; lower preprocess_share or raise epsilon")
    low = high / 2.0
    while low > MIN_NOISE and enough(low):
        low, high = low / 2.0, low
    while high / low > 1.01:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


# ---- DP-SGD's randomness from the budget's RandomSource ------------------------------------------------

def gaussian_noise(source: RandomSource, std: float, like: torch.Tensor) -> torch.Tensor:
    """Gaussian noise of scale `std` shaped like `like`, from `source` (the OS CSPRNG unless the user gave a seed).

    opacus's own noise comes from a torch generator (Mersenne Twister), which is not a CSPRNG; its secure mode
    needs torchcsprng. Here each value is Box–Muller over 53-bit uniforms from `source`, and, as in opacus's
    secure mode (Holohan & Braghin 2021, section 5.1), the sum of four such draws halved, so the low bits of a
    float do not reveal the noise.
    """
    if std == 0:
        return torch.zeros_like(like)
    count = like.numel()
    u = source.uniform((4, count))
    # Box–Muller: each pair of uniforms gives two independent normals; 1 - u lies in (0, 1], so the log is finite
    radius, angle = np.sqrt(-2.0 * np.log1p(-u[0::2])), 2 * np.pi * u[1::2]
    draws = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])
    noise = draws.sum(axis=0) * (std / 2.0)
    return torch.from_numpy(noise).to(device=like.device, dtype=like.dtype).reshape(like.shape)


def poisson_batch(source: RandomSource, rows: int, sample_rate: float) -> np.ndarray:
    """Indices of a Poisson sample: each of `rows` rows kept with probability `sample_rate`, drawn from `source`."""
    return np.flatnonzero(source.uniform(rows) < sample_rate)


class SourceNoise:
    """Mixin for an opacus optimizer: its Gaussian noise comes from `noise_source` (see `gaussian_noise`).

    Mixed in before the opacus class, it replaces `add_noise`, which in opacus 1.5+ adds noise to each
    parameter's clipped sum `summed_grad` and writes the result to `grad`.
    """

    noise_source: RandomSource

    def add_noise(self) -> None:
        from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

        multiplier = getattr(self, "_adjusted_noise_multiplier", self.noise_multiplier)
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            noise = gaussian_noise(self.noise_source, multiplier * self.max_grad_norm, p.summed_grad)
            p.grad = (p.summed_grad + noise).view_as(p)
            _mark_as_processed(p.summed_grad)


def source_noise_optimizer(optimizer_class: type, source: RandomSource, **options):
    """An opacus optimizer of `optimizer_class` whose noise comes from `source`."""
    mixed = type(f"SourceNoise{optimizer_class.__name__}", (SourceNoise, optimizer_class), {})
    optimizer = mixed(**options)
    optimizer.noise_source = source
    return optimizer
