"""Differentially private column domains: the codecs (`tabsynth.table.codecs`) a DP model may use.

A DP model may not read a column's categories or range from the private table. Each modelled column gets
its domain from public facts where the user declared them, else pays for it here:
- categories: the noisy counts that pass a release threshold (`thresholded_counts`); rarer ones are merged
  into one OTHER cell in a text column, else written as missing;
- numbers and dates: both bounds from one noisy histogram over a fixed grid of candidates; then (quantile
  binning) a noisy fine histogram over the range, merged into coarse quantile-like bins by post-processing.
  That histogram is the column's one-way measurement for the model, so it is not paid for twice.
Missing values are a cell of their own wherever the column's dtype can hold them (categories too rare to be
released are written as missing, except in text columns). Decoding samples a value within its bin. All costs are
in zCDP (ρ adds up); thresholding also costs δ.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from tabsynth.errors import ModelError
from tabsynth.privacy.accounting import gaussian_rho, gaussian_sigma
from tabsynth.privacy.bounds import DPRange, bound_requests, dp_range
from tabsynth.privacy.domains import (
    category_warning,
    clipping_warning,
    fine_edges,
    grid_fine_edges,
    kept_tail,
    quantile_groups,
    tail_points,
    with_outside_cells,
)
from tabsynth.privacy.mechanisms import Measurement, RandomSource, discrete_gaussian, thresholded_counts
from tabsynth.table.codecs import OTHER, BinCodec, CategoryCodec, Encoding
from tabsynth.table.counts import as_counts
from tabsynth.table.schema import Column

FINE_CELLS = 128  # cells of the noisy histogram that quantile-like bins are cut from, at most
MIN_FINE_CELLS = 8
FINE_ROWS_PER_SIGMA = 1.0  # fine cells: about one per this many noise scales of (DP-estimated) rows
DAY, SECOND = 86_400.0, 1.0  # dates are coded as wall-clock seconds since 1970
BINNINGS = ("quantile", "uniform")
ROWS_PER_BIN_SIGMA = 4.0  # a coarse bin should hold at least this many one-way noise scales of rows
TEXT_DTYPES = ("object", "str", "string")  # a measured category list of these gets an OTHER cell


@dataclass(frozen=True)
class Charge:
    """One use of the private table: what it released (never values) and what it cost."""

    record: dict
    rho: float
    delta: float = 0.0


@dataclass(frozen=True, eq=False)
class OneWay:
    """A column's noisy counts over its codes, summed from the finer histogram its bins were cut from.

    `sigma` is the noise scale of a typical cell (a bin of k fine cells has k times the variance of one).
    """

    name: str
    noisy: np.ndarray
    sigma: float


@dataclass(frozen=True, eq=False)
class TailCells:
    """The public grid cells a fine histogram also counts beyond a DP range: `under` below it, `over` above it, and
    the range histogram's noisy counts of the same cells (`noisy`, at noise `sigma`), when one was measured."""

    under: int
    over: int
    noisy: np.ndarray | None = None
    sigma: float | None = None

    def combined(self, below: np.ndarray, above: np.ndarray, sigma: float) -> tuple[np.ndarray, float]:
        """The tail cells' counts (`below` and `above`: the fine histogram's, at noise `sigma`) averaged with the
        range histogram's by inverse variance (post-processing of two DP outputs), and the noise of the result."""
        fine = np.concatenate([below, above])
        if self.noisy is None:
            return fine, sigma
        weight = sigma**-2 / (sigma**-2 + self.sigma**-2)
        return weight * fine + (1 - weight) * self.noisy, 1 / math.sqrt(sigma**-2 + self.sigma**-2)


@dataclass(frozen=True)
class Preprocessed:
    encoding: Encoding
    charges: list[Charge]
    one_way: dict[str, OneWay]  # columns whose one-way marginal was measured here
    warnings: list[str] = dataclasses.field(default_factory=list)  # DP losses the steward should know of


def domain_mechanisms(column: Column) -> int:
    """How many mechanisms the column's domain needs (0: it is public); depends on public facts only."""
    declared = column.declared
    if declared.categories is not None or column.kind == "boolean":
        return 0
    if column.kind == "categorical":
        return 1
    return (declared.min is None) + (declared.max is None)


def fit_encoding(table, columns: list[Column], *, rho: float, delta: float, noise: RandomSource,
                 histogram_sigma: float | None = None, bins: int = 16, binning: str = "quantile") -> Preprocessed:
    """Domains for `columns`, spending `rho` (an equal share per mechanism) and `delta` (an equal share per
    measured category list). With quantile binning, each number and date column's one-way marginal is also
    measured, at `histogram_sigma`, on a fine grid: that is the column's one-way measurement for the model.
    `table` is a DataFrame or a `tabsynth.table.counts.Counts` (the table is read through count queries only),
    in two scans whatever the number of columns: the category counts and bound histograms of all columns,
    then the fine histograms of all columns. Noise is drawn column by column, as a scan per query would."""
    counts = as_counts(table)
    uses = [domain_mechanisms(c) for c in columns]
    share = rho / sum(uses) if sum(uses) else 0.0
    lists = sum(1 for c, used in zip(columns, uses, strict=True) if used and c.kind == "categorical")
    categories, buckets = _domain_counts(counts, columns)
    codecs, charges, ranges = [], [], {}
    for column in columns:
        if _is_categorical(column):
            codec, spent = _category_codec(column, categories.get(column.name), share, delta / max(lists, 1), noise)
        else:
            found = dp_range(column, buckets[column.name], share, noise)
            spent = [Charge(record, record["rho"]) for record in found.records]
            codec = None if binning == "quantile" else _uniform_codec(column, found.low, found.high, bins)
            ranges[len(codecs)] = column, found
        codecs.append(codec)
        charges.append(spent)
    fine = {}
    if binning == "quantile" and ranges:
        cells = fine_cells([found for _, found in ranges.values()], histogram_sigma)
        for i, (column, found) in ranges.items():
            fine[i] = _fine_codec(column, found, cells)
            fine[i] += (discrete_gaussian(histogram_sigma, fine[i][1].size, noise),)
    one_way, warnings = _measure_fine(counts, fine, codecs, charges, histogram_sigma, bins)
    return Preprocessed(Encoding(tuple(codecs)), [charge for spent in charges for charge in spent], one_way,
                        warnings)


def fine_cells(ranges: list[DPRange], sigma: float) -> int:
    """How many fine cells a range is cut into: about one per noise scale `sigma` of the rows, by a DP estimate
    of the rows (post-processing: the inverse-variance-weighted mean of the range histograms' noisy sums inside
    their ranges), between MIN_FINE_CELLS and FINE_CELLS; FINE_CELLS when no range was measured. On a small table
    more cells hold more noise than rows, and bins cut from them are placed by the noise (AER CreditCard: 840
    rows at noise 48 per cell spread over 128 cells gave bins equally wide, whatever the values)."""
    sums, variances = [], []
    for found in ranges:
        if found.noisy is not None:
            first, last = np.searchsorted(found.grid, [found.low, found.high], side="right")
            sums.append(found.noisy[first:last + 1].sum())
            variances.append((last + 1 - first) * found.sigma**2)
    if not sums:
        return FINE_CELLS
    weights = 1.0 / np.array(variances)
    rows = max(0.0, float(np.sum(weights * np.array(sums)) / weights.sum()))
    return int(np.clip(rows // (FINE_ROWS_PER_SIGMA * sigma), MIN_FINE_CELLS, FINE_CELLS))


def category_warnings(columns: list[Column], codecs, one_ways: list[np.ndarray]) -> list[str]:
    """Post-processing: a warning for each column whose measured category list merged or dropped many rows, by
    its noisy one-way counts over its codes (one_ways[i] for columns[i] and codecs[i])."""
    return [warning for column, codec, noisy in zip(columns, codecs, one_ways, strict=True)
            if column.kind == "categorical" and domain_mechanisms(column)
            for warning in [category_warning(codec, noisy)] if warning]


def _is_categorical(column: Column) -> bool:
    return column.declared.categories is not None or column.kind in ("categorical", "boolean")


def _domain_counts(counts, columns: list[Column]) -> tuple[dict[str, dict], dict[str, list[np.ndarray]]]:
    """The first scan: the counts of every undeclared category list, and the bucket histograms of every
    undeclared bound (by column name, lower first)."""
    asked = [c.name for c in columns if c.kind == "categorical" and c.declared.categories is None]
    requests = {c.name: bound_requests(c) for c in columns if not _is_categorical(c)}
    categories, answers = counts.domain_counts(asked, [request for r in requests.values() for request in r])
    pending = iter(answers)
    return categories, {name: [next(pending) for _ in r] for name, r in requests.items()}


def _category_codec(column: Column, observed: dict | None, rho: float, delta: float,
                    noise: RandomSource) -> tuple[CategoryCodec, list[Charge]]:
    """The declared (or boolean) categories, else those whose noisy count in `observed` passes the threshold."""
    nullable = _nullable(column)
    public = column.declared.categories
    if public is None and column.kind == "boolean":
        public = (False, True)
    if public is not None:
        return CategoryCodec(column.name, column.dtype, tuple(public), nullable), []
    sigma = gaussian_sigma(rho)
    kept = thresholded_counts(observed, sigma, delta, noise)
    # Sorted by a public key: the order of the true counts must not show through.
    released = tuple(sorted(kept, key=lambda v: (type(v).__name__, str(v))))
    # Whether any category was dropped is not public: a text column gets its other cell whatever was dropped.
    other = _is_text(column)
    if other:
        released = tuple(v for v in released if v != OTHER) + (OTHER,)
    if not released and not nullable:
        raise ModelError(f"column {column.name!r}: no category is frequent enough to be released at this budget "
                         "and its dtype cannot hold missing values; declare its categories or raise epsilon")
    record = {"what": ["categories", column.name], "mechanism": "thresholded discrete Gaussian", "sigma": sigma,
              "rho": rho, "delta": delta, "released": len(released) - other} | ({"other": OTHER} if other else {})
    return CategoryCodec(column.name, column.dtype, released, nullable, other), [Charge(record, rho, delta)]


def _is_text(column: Column) -> bool:
    """Whether the column's dtype (a public fact) holds text, so that it can hold the value OTHER."""
    return column.dtype in TEXT_DTYPES or column.dtype.startswith("string")


def _uniform_codec(column: Column, low: float, high: float, bins: int) -> BinCodec:
    unit = _unit(column, (high - low) / bins)
    edges = fine_edges(low, high, unit, bins)
    return BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                    _nullable(column))


def _fine_codec(column: Column, found: DPRange, cells: int) -> tuple[BinCodec, BinCodec, TailCells]:
    """The fine cells the histogram is measured on: about `cells` over the DP range, placed by its noisy range
    histogram (`grid_fine_edges`), plus the public grid's tail cells beyond each end chosen with DP, plus a cell
    below and one above all that (and a missing cell where the dtype allows one). Also the fine codec over the range
    alone, and its tail cells (`TailCells`)."""
    unit = _unit(column, (found.high - found.low) / cells)
    edges = grid_fine_edges(found.low, found.high, unit, cells, found.grid, found.noisy,
                            point_zero=column.kind != "datetime")
    codec = BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                     _nullable(column))
    under, over = tail_points(found.grid, edges, "lower" in found.measured, "upper" in found.measured)
    measured = with_outside_cells(dataclasses.replace(codec, edges=np.concatenate([under, edges, over])))
    tails = TailCells(len(under), len(over))
    if found.noisy is not None and len(under) + len(over):
        # the range histogram counted the same grid cells: its noisy counts are a second, independent look at them
        lefts = np.concatenate([under, edges[-1:] if len(over) else [], over[:-1]])
        tails = TailCells(len(under), len(over), found.noisy[np.searchsorted(found.grid, lefts, side="right")],
                          found.sigma)
    return codec, measured, tails


def _measure_fine(counts, fine: dict[int, tuple[BinCodec, BinCodec, TailCells, np.ndarray]], codecs: list,
                  charges: list[list[Charge]], sigma: float, bins: int) -> tuple[dict[str, OneWay], list[str]]:
    """The second scan: the fine histograms of all quantile-binned columns (fine[i]: the i-th column's fine codec,
    the codec it is measured over (with tail and outside cells), its tail cells, and the noise) in
    one code_counts query; each column's codec and charge are then filled in at its place i. Also a warning for
    each column whose range clips many values."""
    if not fine:
        return {}, []
    histograms = counts.code_counts([measured for _, measured, _, _ in fine.values()],
                                    [(codec.name,) for codec, _, _, _ in fine.values()])
    rows = noisy_rows([histograms[(codec.name,)] + noise for codec, _, _, noise in fine.values()])
    chosen = coarse_bins(rows, sigma, bins)
    one_way, warnings = {}, [coarser_warning(len(fine), chosen, rows, sigma)] if chosen < bins else []
    for i, (codec, measured, tails, noise) in fine.items():
        codecs[i], one_way[codec.name], charge, warning = _quantile_codec(codec, measured.edges, tails,
                                                                          histograms[(codec.name,)], noise, sigma,
                                                                          chosen)
        charges[i].append(charge)
        warnings += [warning] if warning else []
    return one_way, warnings


def noisy_rows(histograms: list[np.ndarray]) -> float:
    """The row count estimated from noisy full histograms of the same rows (each sums to it, with variance growing
    with its cells): their inverse-variance-weighted mean of sums; post-processing of DP outputs."""
    sums = np.array([h.sum() for h in histograms], dtype=float)
    weights = 1.0 / np.array([h.size for h in histograms], dtype=float)
    return max(0.0, float(np.sum(weights * sums) / np.sum(weights)))


def coarse_bins(rows: float, sigma: float, most: int) -> int:
    """At most `most` bins, fewer on a small table: so many that a bin, split in two by another column in a
    marginal, still holds about ROWS_PER_BIN_SIGMA / 2 noise scales `sigma` (a public number) of the noisy
    `rows`. With more bins than that, a marginal's noise outweighs the counts it keeps apart."""
    return int(min(most, max(2, rows // (ROWS_PER_BIN_SIGMA * sigma))))


def coarser_warning(columns: int, bins: int, rows: float, sigma: float) -> str:
    return (f"{columns} number or date column{'s' if columns != 1 else ''} cut into {bins} bins each: about "
            f"{rows:,.0f} rows (a DP estimate) for noise of about {sigma:,.0f} per count leave no room for finer "
            "ones, so values are kept only to within their bin; raise epsilon or use a larger table for finer bins")


def _quantile_codec(fine: BinCodec, measured: np.ndarray, tails: TailCells, histogram: np.ndarray,
                    noise: np.ndarray, sigma: float, bins: int) -> tuple[BinCodec, OneWay, Charge, str | None]:
    """Quantile-like bins cut from the fine histogram plus its discrete Gaussian `noise` (of scale `sigma`). The
    histogram's cells (between the `measured` edges): one below all, the tail cells below, the range's fine cells,
    the tail cells above, one above all, then the missing cell(s). The tail cells whose noisy mass clears its noise
    (`kept_tail`, on this histogram's counts and the range histogram's, weighed by their noise) join the range;
    what stays outside is clipped into the edge cells, and counts there when the cells are merged into bins (a
    clipped quarter of the values then gets a bin of its own rather than being spread over a wide one)."""
    measurement = Measurement(("marginal", fine.name), histogram.astype(np.int64) + noise, float(sigma),
                              gaussian_rho(sigma))
    charge = Charge(measurement.record() | {"mechanism": "discrete Gaussian", "note": "fine histogram"},
                    measurement.rho)
    noisy = measurement.noisy.astype(float)
    under, inside, ranged = tails.under, len(fine.edges) - 1, len(measured) - 1  # ranged: cells before missing
    tail, tail_sigma = tails.combined(noisy[1:1 + under], noisy[1 + under + inside:ranged - 1], sigma)
    start = 1 + under - kept_tail(tail[under - 1::-1] if under else tail[:0], tail_sigma)
    end = 1 + under + inside + kept_tail(tail[under:], tail_sigma)
    edges = measured[start:end + 1]
    below, cells, above, missing = noisy[:start].sum(), noisy[start:end], noisy[end:ranged].sum(), noisy[ranged:]
    # the clipped counts again, each tail cell at its combined estimate: less noise for the steward's warning
    clipped = [tail[:start - 1].sum() + noisy[0], tail[end - 1 - inside:].sum() + noisy[ranged - 1]]
    clipped_sigma = math.sqrt(sigma**2 * 2 + tail_sigma**2 * (start - 1 + ranged - 1 - end))
    weights = np.clip(cells, 0, None)
    weights[[0, -1]] += np.clip([below, above], 0, None)  # the clipped values are coded into the edge cells
    groups = quantile_groups(weights, bins)
    coarse = np.bincount(groups, weights=cells)
    per_cell = np.bincount(groups).astype(float)
    coarse[[0, -1]] += [below, above]
    per_cell[[0, -1]] += [start, ranged - end]
    coarse, per_cell = np.append(coarse, missing), np.append(per_cell, np.ones(len(missing)))
    codec = dataclasses.replace(fine, edges=edges, groups=groups, weights=weights)
    warning = clipping_warning(codec, *clipped, below + cells.sum() + above, clipped_sigma / math.sqrt(2))
    return codec, OneWay(fine.name, coarse, sigma * math.sqrt(per_cell.mean())), charge, warning


def _unit(column: Column, fine_width: float) -> float | None:
    if column.kind == "datetime":
        has_time = column.datetime_format and any(f"%{c}" in column.datetime_format for c in "HIMSfTXc")
        return SECOND if has_time or fine_width < DAY else DAY
    return None if column.decimals is None else 10.0 ** -column.decimals


def _nullable(column: Column) -> bool:
    """Whether the column can hold a missing value (a public fact of the schema: declared, decided with DP, or
    what its dtype can hold)."""
    if column.nullable is not None:
        return column.nullable
    return not (column.dtype.startswith(("int", "uint")) or column.dtype == "bool")
