"""DP bounds of number and date columns: the exponential mechanism over a fixed, public grid of candidates.

The scores need only how many rows fall between neighbouring grid points, so the private table is read as
one histogram per side (`bucket_counts`): any engine that can count can answer it, and the histograms of all
columns can be asked at once (`bound_requests`, then `dp_bounds` with the answers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tabsynth.privacy.accounting import exponential_epsilon
from tabsynth.privacy.mechanisms import RandomSource, exponential_mechanism
from tabsynth.table.counts import bucket_counts
from tabsynth.table.schema import Column

NUMBER_GRID = np.array(sorted({0.0} | {s * m * 10.0**k for s in (-1, 1) for m in (1, 2, 5) for k in range(-4, 13)}))
DATE_GRID = pd.date_range("1800", "2200", freq="YS").to_numpy("datetime64[s]").astype(np.int64).astype(float)
# np.searchsorted side of the histogram each bound needs: for the lower bound, bucket j holds the rows in
# [grid[j-1], grid[j]); for the upper bound, the rows in (grid[j-1], grid[j]]
BUCKET_SIDE = {"lower": "right", "upper": "left"}
SIDES = (("lower", "min"), ("upper", "max"))  # each bound and the declared fact that makes it public


def bound_grid(column: Column) -> np.ndarray:
    return DATE_GRID if column.kind == "datetime" else number_grid(column.decimals)


def bound_requests(column: Column) -> list[tuple[Column, np.ndarray, str]]:
    """The bucket_counts queries (column, grid, side) of the column's undeclared bounds, lower first."""
    grid = bound_grid(column)
    return [(column, grid, BUCKET_SIDE[side]) for side, fact in SIDES if getattr(column.declared, fact) is None]


def dp_bounds(column: Column, answers: Sequence[np.ndarray], rho: float,
              noise: RandomSource) -> tuple[float, float, list[dict]]:
    """The declared bounds, or DP ones (each costing `rho`) from `answers`, the counts of bound_requests(column)
    in order; also the records of what was released."""
    grid, pending = bound_grid(column), iter(answers)
    bounds, records = {}, []
    for side, fact in SIDES:
        bounds[side] = declared_number(column.kind, getattr(column.declared, fact))
        if bounds[side] is None:
            bounds[side], record = dp_bound_from_counts(next(pending), grid, side, rho, noise, column.name)
            records.append(record)
    low, high = bounds["lower"], bounds["upper"]
    return min(low, high), max(low, high), records


def declared_number(kind: str, value) -> float | None:
    """A declared min or max as a number (dates as wall-clock seconds since 1970); None if not declared."""
    if value is None:
        return None
    if kind == "datetime":
        stamp = pd.Timestamp(value)
        return float((stamp.tz_localize(None) if stamp.tz is not None else stamp).timestamp())
    return float(value)


def bound_scores(buckets: np.ndarray, side: str, epsilon: float) -> np.ndarray:
    """Score of each grid candidate: evidence that the data reaches it, minus the rows it would clip.

    The evidence is the rows in the grid cell just inside the candidate, plus half those of the next cell
    inwards, a quarter of the next, and so on, each cell capped; a candidate far out scores about 0. One row
    changes a score by at most 1. The cap is twice the mechanism's usual error margin, so a bound with a full
    cell next to it wins against any number of empty candidates. `buckets` is the histogram of BUCKET_SIDE[side].
    """
    candidates = len(buckets) - 1
    cap = 4.0 * math.log(candidates / 0.05) / epsilon
    if side == "lower":
        clipped = np.cumsum(buckets)[:candidates]  # rows < candidate
        cells = buckets[1:]  # rows in [grid[i], grid[i+1]), the last one open above
        evidence = _decayed(np.minimum(cells, cap)[::-1])[::-1]
    else:
        cells = buckets[:candidates]  # rows in (grid[i-1], grid[i]], the first one open below
        evidence = _decayed(np.minimum(cells, cap))
        clipped = buckets.sum() - np.cumsum(cells)  # rows > candidate
    return evidence - clipped


def dp_bound_from_counts(buckets: np.ndarray, grid: np.ndarray, side: str, rho: float, noise: RandomSource,
                         name: str) -> tuple[float, dict]:
    """A lower or upper bound from `grid` by the exponential mechanism, given the histogram of
    BUCKET_SIDE[side]; also the record of what it released (the bound's cost is `rho`)."""
    epsilon = exponential_epsilon(rho)
    choice = float(grid[exponential_mechanism(bound_scores(np.asarray(buckets), side, epsilon), epsilon, 1.0, noise)])
    record = {"what": [f"{side} bound", name], "mechanism": "exponential", "epsilon": epsilon, "rho": rho,
              "candidates": len(grid)}
    return choice, record


def dp_bound(present: np.ndarray, grid: np.ndarray, side: str, rho: float, noise: RandomSource,
             name: str) -> tuple[float, dict]:
    """dp_bound_from_counts over an array of present values."""
    return dp_bound_from_counts(bucket_counts(present, grid, BUCKET_SIDE[side]), grid, side, rho, noise, name)


def number_grid(decimals: int | None) -> np.ndarray:
    """The candidates a column's values can take: integers get no bound between 0 and 1, and so on."""
    if decimals is None:
        return NUMBER_GRID
    scaled = NUMBER_GRID * 10.0**decimals
    return NUMBER_GRID[np.isclose(scaled, np.round(scaled), rtol=0, atol=1e-6)]


def _decayed(values: np.ndarray) -> np.ndarray:
    """out[i] = values[i] + values[i-1] / 2 + values[i-2] / 4 + ..."""
    out = values.astype(float)
    for i in range(1, len(out)):
        out[i] += out[i - 1] / 2
    return out
