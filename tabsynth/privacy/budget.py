"""The privacy allowance handed to one DP fit: its (ε, δ) and the source of its noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tabsynth.errors import ModelError
from tabsynth.privacy.mechanisms import RandomSource


@dataclass(frozen=True)
class Budget:
    """What a DP model may spend in one fit. All noise must come from `noise`: the OS CSPRNG (seeded in tests
    only)."""

    epsilon: float
    delta: float
    noise: RandomSource
    # zCDP measurements already paid from this allowance before the model saw the rows (the schema facts of a
    # release, `privacy.facts`): each has .record, .rho and .delta; the model composes them into its accounting.
    prior: tuple = ()

    @property
    def prior_rho(self) -> float:
        return sum(charge.rho for charge in self.prior)

    def __post_init__(self):
        if not (isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ModelError(f"epsilon must be a positive number, got {self.epsilon!r}")
        if not (isinstance(self.delta, (int, float)) and 0 < self.delta < 1):
            raise ModelError(f"delta must be between 0 and 1 (exclusive), got {self.delta!r}")
