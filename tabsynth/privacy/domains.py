"""The cells a number or date column's range is cut into, and the coarse bins merged from them (public
post-processing of a DP range and a noisy histogram: no data is read here)."""

from __future__ import annotations

import math

import numpy as np


def fine_edges(low: float, high: float, unit: float | None, cells: int) -> np.ndarray:
    """About `cells` equal cells covering [low, high] (high included), aligned to `unit`; 0 gets a cell of its own."""
    width = (high - low) / cells or 1.0
    if unit is not None:
        low, high = math.ceil(low / unit - 1e-9) * unit, math.floor(high / unit + 1e-9) * unit + unit
        width = max(unit, math.ceil(width / unit - 1e-9) * unit)
    count = max(1, math.ceil((high - low) / width - 1e-9))
    edges = np.append(low + width * np.arange(count), high)  # the last cell may be narrower: never beyond high
    if unit is not None and low <= 0 < edges[-1] - unit:
        edges = np.union1d(edges, [0.0, unit])
    return np.round(edges, 9)


def quantile_groups(weights: np.ndarray, bins: int) -> np.ndarray:
    """Consecutive fine cells merged into at most `bins` groups of about equal mass; a heavy cell stays alone."""
    total = weights.sum()
    if total <= 0:
        return np.minimum(np.arange(len(weights)) * bins // len(weights), bins - 1)
    middle = (np.cumsum(weights) - weights / 2) / total
    raw = np.minimum((middle * bins).astype(np.int64), bins - 1)
    return np.unique(raw, return_inverse=True)[1].astype(np.int64)
