"""The cells a number or date column's range is cut into, and the coarse bins merged from them (public
post-processing of a DP range and a noisy histogram: no data is read here)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tabsynth.table.codecs import OTHER


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


CLIPPED_WARN_SHARE = 0.01  # a range that clips more than this share of a column's values (by DP counts) is shown


def with_outside_cells(codec):
    """The same BinCodec with one cell below its range and one above: a histogram over it counts the values
    the range clips (one row still lands in one cell, so it costs what the plain histogram costs)."""
    edges = np.concatenate([[-np.finfo(float).max], codec.edges, [np.finfo(float).max]])
    cells = np.arange(len(edges) - 1)
    return dataclasses.replace(codec, edges=edges, groups=cells, weights=np.ones(len(cells)))


def clipping_warning(codec, below: float, above: float, total: float, sigma: float) -> str | None:
    """A line for the steward when the noisy counts say the DP range clips a noticeable share of the values."""
    clipped = max(below, 0.0) + max(above, 0.0)
    share = min(clipped / total, 1.0) if total > 0 else 0.0  # both are noisy: the ratio may pass 1
    if share <= CLIPPED_WARN_SHARE or clipped <= 2 * sigma * math.sqrt(2):
        return None
    low, high = (_shown(codec.kind, codec.edges[i]) for i in (0, -1))
    return (f"{codec.name}: about {share:.0%} of its values lie outside the range {low} to {high} chosen with DP "
            "and were clipped into it; declare min and max in the schema file to keep them")


def _shown(kind: str, value: float) -> str:
    if kind == "datetime":
        return str(np.datetime64(int(value), "s").astype("datetime64[D]"))
    return f"{value:,.6g}"


def category_warning(codec, noisy: np.ndarray) -> str | None:
    """A line for the steward when a column's noisy one-way counts over its cells (`noisy`, post-processing of
    DP measurements) say many rows lost their category to the DP category list: merged into its other cell,
    or, without one, written in its missing cell. None for a codec with neither cell."""
    counts = np.clip(np.asarray(noisy, dtype=float), 0, None)
    total = max(float(counts.sum()), 1.0)
    if codec.other:
        return merged_warning(codec.name, len(codec.values) - 1, float(counts[len(codec.values) - 1]) / total)
    return suppressed_warning(codec.name, len(codec.values), float(counts[-1]) / total) if codec.nullable else None


def merged_warning(name: str, released: int, other_share: float) -> str | None:
    """A line for the steward when a DP estimate says many rows of a text column fall in its other cell."""
    if other_share <= CLIPPED_WARN_SHARE:
        return None
    return (f"{name}: {released} categor{'y' if released == 1 else 'ies'} kept; those too rare to keep at this "
            f"budget were merged into {OTHER!r} (about {other_share:.0%} of rows, a DP estimate); declare its "
            "categories in the schema file to keep them")


def suppressed_warning(name: str, released: int, missing_share: float) -> str | None:
    """A line for the steward when a DP estimate says many rows of a column whose categories were measured with
    DP fall in its missing cell, where the values of categories too rare to release are written."""
    if missing_share <= CLIPPED_WARN_SHARE:
        return None
    return (f"{name}: {released} categor{'y' if released == 1 else 'ies'} released; about {missing_share:.0%} of "
            "rows (a DP estimate) hold a missing value or a category too rare to release at this budget, written "
            "as missing; declare its categories in the schema file to keep them")


TAIL_CELLS = 6  # public grid cells counted beyond each DP-chosen end of a range: two decades of the 1-2-5 grid
TAIL_SCALES = 2.5  # a run of tail cells joins the range when its noisy sum clears this many of its noise scales


def grid_fine_edges(low: float, high: float, unit: float | None, cells: int, grid: np.ndarray,
                    noisy: np.ndarray | None, point_zero: bool) -> np.ndarray:
    """About `cells` cells covering [low, high], placed by DP mass (post-processing of the noisy range histogram
    `noisy` over the public `grid`'s cells): the grid points inside the range cut it into pieces, each piece gets
    cells in proportion to its grid cell's noisy count, at least one, equal within the piece. A heavy tail thus
    gets fine cells where its values are (a uniform grid put 80 % of AER CreditCard's expenditure in one of 8
    cells). The piece starting at 0 is never cut, and with `point_zero` the value 0 (public) is a cell of its own.
    Without a histogram (declared bounds), equal cells."""
    if noisy is None or not high > low:
        edges = fine_edges(low, high, unit, cells)
    else:
        points = np.concatenate([[low], grid[(grid > low) & (grid < high)], [high]])
        mass = np.clip(noisy[np.searchsorted(grid, points[:-1], side="right")], 0, None)
        share = mass / mass.sum() if mass.sum() > 0 else np.diff(points) / (high - low)
        pieces = np.maximum(1, np.round(cells * share)).astype(np.int64)
        pieces[points[:-1] == 0] = 1
        cuts = [a + (b - a) * np.arange(k) / k for a, b, k in zip(points[:-1], points[1:], pieces, strict=True)]
        edges = _aligned(np.concatenate([*cuts, [high]]), unit)
    if point_zero and edges[0] <= 0 < edges[-1]:
        # [0, the next float): exact zeros alone (a unit-aligned column already has [0, unit))
        edges = np.union1d(edges, [0.0, unit or np.nextafter(0.0, 1.0)])
    return edges


def _aligned(edges: np.ndarray, unit: float | None) -> np.ndarray:
    """Edges on whole multiples of `unit`, the last one a unit past the range's top (so that it is included), as
    fine_edges makes them."""
    if unit is None:
        return np.unique(np.round(edges, 9))
    low, high = math.ceil(edges[0] / unit - 1e-9) * unit, math.floor(edges[-1] / unit + 1e-9) * unit + unit
    inner = np.round(edges[1:-1] / unit) * unit
    return np.unique(np.round(np.concatenate([[low], inner[(inner > low) & (inner < high)], [high]]), 9))


def tail_points(grid: np.ndarray, edges: np.ndarray, below: bool, above: bool) -> tuple[np.ndarray, np.ndarray]:
    """The public grid points of up to TAIL_CELLS cells beyond each measured end of a range's `edges`."""
    under = grid[grid < edges[0]][-TAIL_CELLS:] if below else grid[:0]
    over = grid[grid > edges[-1]][:TAIL_CELLS] if above else grid[:0]
    return under, over


def kept_tail(noisy: np.ndarray, sigma: float) -> int:
    """How many tail cells (noisy counts, innermost first) join the range: the most k whose first k cells' noisy
    sum clears TAIL_SCALES noise scales (post-processing). A thin tail spread over a decade or two, too thin per
    cell for the range histogram's bar, is kept instead of clipped (AER CreditCard's `share`: the quarter of
    values below 0.001, nearly all card = no, were clipped in among values ten times larger)."""
    sums = np.cumsum(np.asarray(noisy, dtype=float))
    clears = np.flatnonzero(sums > TAIL_SCALES * sigma * np.sqrt(np.arange(1, len(sums) + 1)))
    return int(clears[-1]) + 1 if clears.size else 0
