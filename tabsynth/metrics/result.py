"""The one value type every check returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    goal: Literal["min", "max", "target"]
    description: str
    reads_private_rows: bool = True  # computed from rows of the private table (train or holdout)
    details: dict = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        return isinstance(self.value, (int, float)) and math.isfinite(self.value)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["value"] = self.value if self.is_valid else None
        return out
