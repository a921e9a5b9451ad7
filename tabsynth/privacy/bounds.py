"""DP bounds of number and date columns, chosen on a fixed, public grid of candidates.

`dp_bounds` (what models use): one noisy histogram of the column over the grid's cells gives both bounds at
once, by post-processing (`histogram_range`). On a small table this is far more accurate than the exponential
mechanism per bound at the same cost (AER CreditCard, 850 rows, ρ of ε = 0.025 per bound: the mechanism gave
ranges like -5e5 to 1e12 in 40-75 % of draws on 5 of 9 columns; the histogram gives none, clipping 0-4 % on 6
of them).
The private table is read as bucket counts (`bucket_counts`): any engine that can count can answer them, and
the histograms of all columns can be asked at once (`bound_requests`, then `dp_bounds` with the answers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from tabsynth.privacy.accounting import gaussian_sigma
from tabsynth.privacy.mechanisms import Measurement, RandomSource, measure_counts
from tabsynth.table.schema import Column

NUMBER_GRID = np.array(sorted({0.0} | {s * m * 10.0**k for s in (-1, 1) for m in (1, 2, 5) for k in range(-4, 13)}))
DATE_GRID = pd.date_range("1800", "2200", freq="YS").to_numpy("datetime64[s]").astype(np.int64).astype(float)
# np.searchsorted side of the histogram each bound needs: for the lower bound, bucket j holds the rows in
# [grid[j-1], grid[j]); for the upper bound, the rows in (grid[j-1], grid[j]]
BUCKET_SIDE = {"lower": "right", "upper": "left"}
SIDES = (("lower", "min"), ("upper", "max"))  # each bound and the declared fact that makes it public


def bound_grid(column: Column) -> np.ndarray:
    return DATE_GRID if column.kind == "datetime" else number_grid(column.decimals)


# histogram_range: a run of cells whose noisy sum clears a bar set so that noise alone passes one anywhere on the
# grid with this probability (a false run far out makes an absurd range, e.g. -1e10 to 100: at 1 % that was one
# column in a hundred; 1e-4 clips a small table's thin tails more, 8 % instead of 5 %); runs of this many cells,
# so mass spread thinly over a decade or two is seen too
FALSE_SEED = 1e-3
SEED_RUNS = (1, 3, 6)
ZERO_SCALES = 2.0  # noise passes it in about 2 % of columns without zeros, widening their range down to 0
TRIM_SHARE = 0.005  # outer cells holding at most this share of the (noisy) rows are trimmed; their clipping is shown


def bound_requests(column: Column) -> list[tuple[Column, np.ndarray, str]]:
    """The bucket_counts query (column, grid, side) of the column's undeclared bounds: one histogram, or none."""
    undeclared = any(getattr(column.declared, fact) is None for _, fact in SIDES)
    return [(column, bound_grid(column), BUCKET_SIDE["lower"])] if undeclared else []


@dataclass(frozen=True, eq=False)
class DPRange:
    """A column's range: declared, or chosen from `noisy`, its noisy histogram over the public `grid`'s cells
    (cell j: [grid[j-1], grid[j])) at noise `sigma`; None when both bounds were declared and nothing measured.
    The histogram is a DP output: later steps may post-process it (where to place bins) at no further cost."""

    low: float
    high: float
    records: list[dict]
    grid: np.ndarray
    noisy: np.ndarray | None = None
    sigma: float | None = None
    measured: tuple[str, ...] = ()  # the bounds chosen with DP ("lower", "upper"): a declared one is never widened


def dp_bounds(column: Column, answers: Sequence[np.ndarray], rho: float,
              noise: RandomSource) -> tuple[float, float, list[dict]]:
    """The declared bounds, or DP ones from `answers` (the counts of bound_requests(column)): one noisy
    histogram costing `rho` per undeclared bound; also the record of what was released."""
    found = dp_range(column, answers, rho, noise)
    return found.low, found.high, found.records


def dp_range(column: Column, answers: Sequence[np.ndarray], rho: float, noise: RandomSource) -> DPRange:
    """dp_bounds, with the noisy range histogram the bounds were chosen from (when one was measured)."""
    grid = bound_grid(column)
    bounds = {side: declared_number(column.kind, getattr(column.declared, fact)) for side, fact in SIDES}
    missing = [side for side in bounds if bounds[side] is None]
    if not missing:
        return DPRange(bounds["lower"], bounds["upper"], [], grid)
    measured = range_histogram(column, answers[0], rho * len(missing), noise)
    sigma = measured.sigma
    noisy = measured.noisy.astype(float)
    found_range = histogram_range(noisy, grid, sigma)
    if column.kind != "datetime":
        found_range = with_zero(noisy, grid, sigma, *found_range)
    found = dict(zip(("lower", "upper"), found_range, strict=True))
    bounds = {side: found[side] if value is None else value for side, value in bounds.items()}
    record = measured.record() | {"mechanism": "discrete Gaussian", "bounds": missing, "candidates": len(grid)}
    low, high = bounds["lower"], bounds["upper"]
    return DPRange(min(low, high), max(low, high), [record], grid, noisy, sigma, tuple(missing))


def with_zero(noisy: np.ndarray, grid: np.ndarray, sigma: float, low: float, high: float) -> tuple[float, float]:
    """A number range of one sign spanning a decade or more reaches to 0 when the noisy count of exact zeros clears
    ZERO_SCALES noise scales (post-processing): a share of zeros too small for its cell to clear the seed bar on a
    small table (AER CreditCard's expenditure: 23 % of 850 rows at noise ~80 per count) was otherwise clipped up
    to the range's start, among real amounts. Never clips more; the range grows by at most a tenth of its width."""
    zeros = noisy[int(np.searchsorted(grid, 0.0, side="right"))]  # the cell [0, the grid point above 0)
    if zeros <= ZERO_SCALES * sigma:
        return low, high
    if 0 < low <= high / 10:
        return 0.0, high
    if low / 10 <= high < 0:
        return low, 0.0
    return low, high


def range_histogram(column: Column, counts: np.ndarray, rho: float, noise: RandomSource) -> Measurement:
    """The column's bucket counts over its grid plus discrete Gaussian noise costing `rho` (one row adds 1 to one
    bucket); its bounds are post-processing of it (`histogram_range`)."""
    return measure_counts(np.asarray(counts, dtype=np.int64), gaussian_sigma(rho), ("range histogram", column.name),
                          noise)


def histogram_range(noisy: np.ndarray, grid: np.ndarray, sigma: float) -> tuple[float, float]:
    """The range of the cells a noisy histogram over the grid's cells (cell j: [grid[j-1], grid[j])) says are
    occupied (post-processing only): every run of SEED_RUNS cells, counted outwards from 0, whose noisy sum clears
    a bar that noise alone passes with probability FALSE_SEED over the whole grid; the range's outer cells that
    came in with a run are trimmed while they hold at most TRIM_SHARE of the noisy total; then neighbouring cells
    that clear the one-cell bar join, one by one (a lower bar lets noise alone grow the range: at one noise scale,
    Adult's age reached 5,000 in a third of draws). With no run clearing its bar, the run whose noisy sum is the
    most noise scales above 0."""
    runs = _runs(grid, len(noisy))
    bar = sigma * NormalDist().inv_cdf(1.0 - FALSE_SEED / len(runs))
    seeded = [run for run in runs if noisy[run].sum() > bar * math.sqrt(len(run))]
    if not seeded:  # the run most unlike noise, not the fullest single cell (far out, that is often noise)
        seeded = [max(runs, key=lambda run: noisy[run].sum() / math.sqrt(len(run)))]
    cells = sorted({cell for run in seeded for cell in run})
    least = TRIM_SHARE * max(float(noisy.sum()), 0.0)
    low, high = _trimmed(noisy, least, cells[0], cells[-1], {run[0] for run in seeded if len(run) == 1})
    while low > 0 and noisy[low - 1] > bar:
        low -= 1
    while high < len(noisy) - 1 and noisy[high + 1] > bar:
        high += 1
    return float(grid[max(low - 1, 0)]), float(grid[min(high, len(grid) - 1)])


def _runs(grid: np.ndarray, cells: int) -> list[list[int]]:
    """Runs of SEED_RUNS consecutive cells, from the cell starting at 0 upwards and from the one ending at 0
    downwards (no run holds values of both signs)."""
    zero = int(np.searchsorted(grid, 0.0, side="right"))
    out = []
    for size in SEED_RUNS:
        out += [list(range(start, min(start + size, cells))) for start in range(zero, cells, size)]
        out += [list(range(max(end - size, -1) + 1, end + 1)) for end in range(zero - 1, -1, -size)]
    return out


def _trimmed(noisy: np.ndarray, least: float, low: int, high: int, sure: set[int]) -> tuple[int, int]:
    """[low, high] without outer cells (other than `sure` ones) whose noisy sum, counted from the outside in, stays
    at or under `least` rows: on a large table the empty cells a seeded run brings along go (Adult's age reached
    5,000 in a third of draws when only a sum <= 0 went), on a small one, where noise outweighs `least`, a thin real
    tail is kept about as often as not."""
    top, bottom = high, low
    while high > low and high not in sure and noisy[high:top + 1].sum() <= least:
        high -= 1
    while low < high and low not in sure and noisy[bottom:low + 1].sum() <= least:
        low += 1
    return low, high


def declared_number(kind: str, value) -> float | None:
    """A declared min or max as a number (dates as wall-clock seconds since 1970); None if not declared."""
    if value is None:
        return None
    if kind == "datetime":
        stamp = pd.Timestamp(value)
        return float((stamp.tz_localize(None) if stamp.tz is not None else stamp).timestamp())
    return float(value)


def number_grid(decimals: int | None) -> np.ndarray:
    """The candidates a column's values can take: integers get no bound between 0 and 1, and so on."""
    if decimals is None:
        return NUMBER_GRID
    scaled = NUMBER_GRID * 10.0**decimals
    return NUMBER_GRID[np.isclose(scaled, np.round(scaled), rtol=0, atol=1e-6)]

