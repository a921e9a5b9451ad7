"""Differentially private column domains, and the maps between column values and integer cell codes.

A DP model may not read a column's categories or range from the private table. Each modelled column gets
its domain from public facts where the user declared them, else pays for it here:
- categories: the noisy counts that pass a release threshold (`thresholded_counts`); rarer ones are dropped;
- numbers and dates: each bound by the exponential mechanism over a fixed grid of candidates; then (quantile
  binning) a noisy fine histogram over the range, merged into coarse quantile-like bins by post-processing.
  That histogram is the column's one-way measurement for the model, so it is not paid for twice.
Missing values are a cell of their own wherever the column's dtype can hold them (categories too rare to be
released are written as missing). Decoding samples a value within its bin. All costs are in zCDP (ρ adds up);
thresholding also costs δ.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.models.base import pack_states
from tabsynth.models.marginals import take_categories
from tabsynth.privacy.accounting import gaussian_rho, gaussian_sigma
from tabsynth.privacy.bounds import bound_requests, dp_bounds
from tabsynth.privacy.domains import clipping_warning, fine_edges, quantile_groups, with_outside_cells
from tabsynth.privacy.mechanisms import Measurement, RandomSource, discrete_gaussian, thresholded_counts
from tabsynth.table.schema import Column

DECODE_ROWS = 1 << 20  # rows decoded at once
FINE_CELLS = 128  # cells of the noisy histogram that quantile-like bins are cut from
DAY, SECOND = 86_400.0, 1.0  # dates are coded as wall-clock seconds since 1970
BINNINGS = ("quantile", "uniform")


@dataclass(frozen=True)
class Charge:
    """One use of the private table: what it released (never values) and what it cost."""

    record: dict
    rho: float
    delta: float = 0.0


@dataclass(frozen=True)
class CategoryCodec:
    """Codes 0..k-1 for the released categories, and a last cell for missing or unreleased values if nullable
    (a column that cannot hold missing values codes an unknown value as the first category)."""

    name: str
    dtype: str
    values: tuple
    nullable: bool

    @property
    def size(self) -> int:
        return len(self.values) + self.nullable

    def encode(self, series: pd.Series) -> np.ndarray:
        lookup = {value: code for code, value in enumerate(self.values)}
        fallback = len(self.values) if self.nullable else 0
        return series.map(lookup).astype(float).fillna(fallback).to_numpy(np.int64)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.Series:
        return take_categories(self.values, codes, self.dtype, self.name)  # the code len(values) is missing

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        values = [plain_value(v) for v in self.values]
        return {"type": "categories", "name": self.name, "dtype": self.dtype, "values": values,
                "nullable": self.nullable}, {}


@dataclass(frozen=True, eq=False)
class BinCodec:
    """Numbers or dates in bins: fine cells [edges[i], edges[i+1]) grouped into coarse bins (the codes)."""

    name: str
    kind: str
    dtype: str
    edges: np.ndarray  # fine cell boundaries, increasing
    groups: np.ndarray  # coarse bin of each fine cell, 0, 1, ... non-decreasing
    weights: np.ndarray  # relative mass of each fine cell (noisy counts after clipping, or widths)
    unit: float | None  # decoded values are whole multiples of this (1 for integers, a day, ...)
    nullable: bool

    @property
    def size(self) -> int:
        return int(self.groups[-1]) + 1 + self.nullable

    def encode(self, series: pd.Series) -> np.ndarray:
        numbers = to_numbers(self.kind, series)
        cells = np.searchsorted(self.edges, np.nan_to_num(numbers), side="right") - 1
        codes = self.groups[np.clip(cells, 0, len(self.groups) - 1)]
        return np.where(np.isnan(numbers), self.size - 1, codes) if self.nullable else codes

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.Series:
        numbers = np.empty(len(codes))
        for start in range(0, len(codes), DECODE_ROWS):  # chunks bound the temporaries, whatever n is
            numbers[start:start + DECODE_ROWS] = self._numbers(codes[start:start + DECODE_ROWS], rng)
        return from_numbers(self.kind, self.dtype, self.name, numbers)

    def _numbers(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A value in a fine cell of each code's bin (NaN for the missing cell), as float."""
        present = codes < self.groups[-1] + 1
        cells = _fine_cells(self.groups, self.weights, codes if present.all() else codes[present], rng)
        low = self.edges[cells]
        offsets = rng.random(len(cells)) * (self.edges[cells + 1] - low)
        if self.unit is not None:
            offsets = np.floor(offsets / self.unit) * self.unit
        numbers = low + offsets if self.unit is None else np.round(low + offsets, 9)
        if len(numbers) == len(codes):
            return numbers
        out = np.full(len(codes), np.nan)
        out[present] = numbers
        return out

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"type": "bins", "name": self.name, "kind": self.kind, "dtype": self.dtype, "unit": self.unit,
                "nullable": self.nullable}
        return meta, {"edges": self.edges, "groups": self.groups, "weights": self.weights}


Codec = CategoryCodec | BinCodec


@dataclass(frozen=True)
class Encoding:
    """The codecs of all modelled columns, in order."""

    codecs: tuple[Codec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.codecs]

    @property
    def sizes(self) -> list[int]:
        return [c.size for c in self.codecs]

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """(rows × columns) int64 cell codes."""
        return np.stack([c.encode(table[c.name]) for c in self.codecs], axis=1) if self.codecs else \
            np.zeros((len(table), 0), dtype=np.int64)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        columns = {c.name: c.decode(codes[:, i], rng) for i, c in enumerate(self.codecs)}
        return pd.DataFrame(columns, copy=False)  # consolidating 1e6-row columns would cost more than decoding

    def state(self) -> tuple[list[dict], dict[str, np.ndarray]]:
        return pack_states(self.codecs, "c")

    @classmethod
    def from_state(cls, metas: list[dict], arrays: dict[str, np.ndarray]) -> Encoding:
        codecs = []
        for i, meta in enumerate(metas):
            if meta["type"] == "categories":
                codecs.append(CategoryCodec(meta["name"], meta["dtype"], tuple(meta["values"]), bool(meta["nullable"])))
            else:
                codecs.append(BinCodec(meta["name"], meta["kind"], meta["dtype"], arrays[f"c{i}_edges"],
                                       arrays[f"c{i}_groups"], arrays[f"c{i}_weights"], meta["unit"],
                                       bool(meta["nullable"])))
        return cls(tuple(codecs))


@dataclass(frozen=True, eq=False)
class OneWay:
    """A column's noisy counts over its codes, summed from the finer histogram its bins were cut from.

    `sigma` is the noise scale of a typical cell (a bin of k fine cells has k times the variance of one).
    """

    name: str
    noisy: np.ndarray
    sigma: float


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
    from tabsynth.table.counts import as_counts  # tabsynth.scale builds on this module

    counts = as_counts(table)
    uses = [domain_mechanisms(c) for c in columns]
    share = rho / sum(uses) if sum(uses) else 0.0
    lists = sum(1 for c, used in zip(columns, uses, strict=True) if used and c.kind == "categorical")
    categories, buckets = _domain_counts(counts, columns)
    codecs, charges, fine = [], [], {}
    for column in columns:
        if _is_categorical(column):
            codec, spent = _category_codec(column, categories.get(column.name), share, delta / max(lists, 1), noise)
        else:
            low, high, records = dp_bounds(column, buckets[column.name], share, noise)
            spent = [Charge(record, share) for record in records]
            if binning == "quantile":
                codec = _fine_codec(column, low, high)
                # the histogram's noise is drawn in the column's turn (it does not depend on the counts), so a
                # seeded fit draws the same noise as when each column's histogram was counted in its turn
                outside = with_outside_cells(codec)  # also counts the values the range clips, at no extra cost
                fine[len(codecs)] = codec, outside, discrete_gaussian(histogram_sigma, outside.size, noise)
            else:
                codec = _uniform_codec(column, low, high, bins)
        codecs.append(codec)
        charges.append(spent)
    one_way, warnings = _measure_fine(counts, fine, codecs, charges, histogram_sigma, bins)
    return Preprocessed(Encoding(tuple(codecs)), [charge for spent in charges for charge in spent], one_way,
                        warnings)


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
    if not released and not nullable:
        raise ModelError(f"column {column.name!r}: no category is frequent enough to be released at this budget "
                         "and its dtype cannot hold missing values; declare its categories or raise epsilon")
    record = {"what": ["categories", column.name], "mechanism": "thresholded discrete Gaussian", "sigma": sigma,
              "rho": rho, "delta": delta, "released": len(released)}
    return CategoryCodec(column.name, column.dtype, released, nullable), [Charge(record, rho, delta)]


def _uniform_codec(column: Column, low: float, high: float, bins: int) -> BinCodec:
    unit = _unit(column, (high - low) / bins)
    edges = fine_edges(low, high, unit, bins)
    return BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                    _nullable(column))


def _fine_codec(column: Column, low: float, high: float) -> BinCodec:
    """One bin per fine cell (plus a missing cell where the dtype allows one): the histogram bins are cut from."""
    unit = _unit(column, (high - low) / FINE_CELLS)
    edges = fine_edges(low, high, unit, FINE_CELLS)
    return BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                    _nullable(column))


def _measure_fine(counts, fine: dict[int, tuple[BinCodec, BinCodec, np.ndarray]], codecs: list,
                  charges: list[list[Charge]], sigma: float, bins: int) -> tuple[dict[str, OneWay], list[str]]:
    """The second scan: the fine histograms of all quantile-binned columns (fine[i]: the i-th column's fine codec,
    the same with a cell below and above its range, and the noise) in one code_counts query; each column's codec
    and charge are then filled in at its place i. Also a warning for each column whose range clips many values."""
    if not fine:
        return {}, []
    histograms = counts.code_counts([outside for _, outside, _ in fine.values()],
                                    [(codec.name,) for codec, _, _ in fine.values()])
    one_way, warnings = {}, []
    for i, (codec, _, noise) in fine.items():
        codecs[i], one_way[codec.name], charge, warning = _quantile_codec(codec, histograms[(codec.name,)], noise,
                                                                          sigma, bins)
        charges[i].append(charge)
        warnings += [warning] if warning else []
    return one_way, warnings


def _quantile_codec(fine: BinCodec, histogram: np.ndarray, noise: np.ndarray, sigma: float,
                    bins: int) -> tuple[BinCodec, OneWay, Charge, str | None]:
    """Quantile-like bins cut from the fine histogram plus its discrete Gaussian `noise` (of scale `sigma`); the
    histogram's first and last cells count the values below and above the range (clipped into the edge bins)."""
    measurement = Measurement(("marginal", fine.name), histogram.astype(np.int64) + noise, float(sigma),
                              gaussian_rho(sigma))
    charge = Charge(measurement.record() | {"mechanism": "discrete Gaussian", "note": "fine histogram"},
                    measurement.rho)
    noisy = measurement.noisy.astype(float)
    inside = len(fine.edges) - 1
    below, cells, above, missing = noisy[0], noisy[1:inside + 1], noisy[inside + 1], noisy[inside + 2:]
    weights = np.clip(cells, 0, None)
    groups = quantile_groups(weights, bins)
    coarse = np.bincount(groups, weights=cells)
    per_cell = np.bincount(groups).astype(float)
    coarse[[0, -1]] += [below, above]
    per_cell[[0, -1]] += 1
    coarse, per_cell = np.append(coarse, missing), np.append(per_cell, np.ones(len(missing)))
    codec = dataclasses.replace(fine, groups=groups, weights=weights)
    warning = clipping_warning(fine, below, above, below + cells.sum() + above, sigma)
    return codec, OneWay(fine.name, coarse, sigma * math.sqrt(per_cell.mean())), charge, warning


def _unit(column: Column, fine_width: float) -> float | None:
    if column.kind == "datetime":
        has_time = column.datetime_format and any(f"%{c}" in column.datetime_format for c in "HIMSfTXc")
        return SECOND if has_time or fine_width < DAY else DAY
    return None if column.decimals is None else 10.0 ** -column.decimals


def to_numbers(kind: str, series: pd.Series) -> np.ndarray:
    """Numbers as float, dates as wall-clock seconds since 1970; NaN where missing.

    A time with a zone counts by its local wall-clock time in that zone (so a zoned date column bins into its
    own days and decodes to local midnights). DuckDB and Spark, which read a zoned Parquet column as instants,
    count it the same way by converting to the zone in the column's dtype (`scale.sql.number_sql`).
    """
    if kind != "datetime":
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(float)
        return np.where(np.isinf(numbers), np.sign(numbers) * np.finfo(float).max, numbers)
    stamps = pd.to_datetime(series, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    seconds = stamps.to_numpy("datetime64[s]").astype(np.int64).astype(float)
    seconds[stamps.isna().to_numpy()] = np.nan
    return seconds


def from_numbers(kind: str, dtype: str, name: str, numbers: np.ndarray) -> pd.Series:
    """`to_numbers` undone: values of `dtype`; a zoned dtype's wall-clock seconds are localized back to it."""
    if kind != "datetime":
        return _astype(pd.Series(numbers, name=name), dtype)
    stamps = pd.Series(pd.to_datetime(numbers, unit="s"), name=name)
    tz = getattr(pd.api.types.pandas_dtype(dtype), "tz", None)
    if tz is not None:
        stamps = stamps.dt.tz_localize(tz, ambiguous=np.zeros(len(stamps), dtype=bool), nonexistent="shift_forward")
    return _astype(stamps, dtype)


def _nullable(column: Column) -> bool:
    """Whether the column can hold a missing value (a public fact of the schema: declared, decided with DP, or
    what its dtype can hold)."""
    if column.nullable is not None:
        return column.nullable
    return not (column.dtype.startswith(("int", "uint")) or column.dtype == "bool")


def _fine_cells(groups: np.ndarray, weights: np.ndarray, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each coarse code, one of its fine cells, drawn in proportion to the cells' weights (uniformly where
    they all weigh 0). Inverse CDF over the running total of the weights: a guide table gives the first cell
    that a row's point can fall in, and a few vectorised steps move the rare rows whose point lies further on."""
    mass = np.bincount(groups, weights=weights)
    total = np.concatenate([[0.0], np.cumsum(np.where(mass[groups] > 0, weights, 1.0))])
    first = np.searchsorted(groups, np.arange(len(mass) + 1))  # each group's first cell, then the end
    low, span = total[first[:-1]], total[first[1:]] - total[first[:-1]]
    buckets = 1 << int(4 * np.diff(first).max()).bit_length()  # a power of 2: bucket edges j / buckets are exact
    edges = low[:, None] + np.arange(buckets) / buckets * span[:, None]
    guide = np.searchsorted(total, edges.ravel(), side="right") - 1  # the cell each bucket starts in
    u = rng.random(len(codes))
    points = low[codes] + u * span[codes]
    cells = guide[codes * buckets + (u * buckets).astype(np.int64)]
    ahead = np.flatnonzero(total[cells + 1] <= points)
    while ahead.size:
        ahead = ahead[cells[ahead] + 1 < first[codes[ahead] + 1]]  # rounding may put a point on its group's end
        cells[ahead] += 1
        ahead = ahead[total[cells[ahead] + 1] <= points[ahead]]
    return cells


def plain_value(value):
    return value.item() if hasattr(value, "item") else value


def _astype(series: pd.Series, dtype: str) -> pd.Series:
    try:
        return series.astype(dtype, copy=False)
    except (TypeError, ValueError):
        return series
