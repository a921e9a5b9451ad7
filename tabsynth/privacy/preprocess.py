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

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.models.base import pack_states
from tabsynth.models.marginals import take_categories
from tabsynth.privacy.accounting import gaussian_sigma
from tabsynth.privacy.bounds import BUCKET_SIDE, DATE_GRID, dp_bound_from_counts, number_grid
from tabsynth.privacy.mechanisms import RandomSource, measure_counts, thresholded_counts
from tabsynth.schema import Column

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
        values = [_plain(v) for v in self.values]
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
        numbers = _to_numbers(self.kind, series)
        cells = np.searchsorted(self.edges, np.nan_to_num(numbers), side="right") - 1
        codes = self.groups[np.clip(cells, 0, len(self.groups) - 1)]
        return np.where(np.isnan(numbers), self.size - 1, codes) if self.nullable else codes

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.Series:
        numbers = np.empty(len(codes))
        for start in range(0, len(codes), DECODE_ROWS):  # chunks bound the temporaries, whatever n is
            numbers[start:start + DECODE_ROWS] = self._numbers(codes[start:start + DECODE_ROWS], rng)
        return _from_numbers(self.kind, self.dtype, self.name, numbers)

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
    `table` is a DataFrame or a `tabsynth.scale.counts.Counts` (the table is read through count queries only)."""
    from tabsynth.scale.counts import as_counts  # tabsynth.scale builds on this module

    counts = as_counts(table)
    uses = [domain_mechanisms(c) for c in columns]
    share = rho / sum(uses) if sum(uses) else 0.0
    lists = sum(1 for c, used in zip(columns, uses, strict=True) if used and c.kind == "categorical")
    codecs, charges, one_way = [], [], {}
    for column in columns:
        if column.declared.categories is not None or column.kind in ("categorical", "boolean"):
            codec, spent = _category_codec(column, counts, share, delta / max(lists, 1), noise)
        else:
            low, high, spent = _bounds(column, counts, share, noise)
            if binning == "quantile":
                codec, one_way[column.name], charge = _quantile_codec(column, counts, low, high, histogram_sigma,
                                                                      bins, noise)
                spent.append(charge)
            else:
                codec = _uniform_codec(column, low, high, bins)
        codecs.append(codec)
        charges += spent
    return Preprocessed(Encoding(tuple(codecs)), charges, one_way)


def _category_codec(column: Column, counts, rho: float, delta: float,
                    noise: RandomSource) -> tuple[CategoryCodec, list[Charge]]:
    nullable = _nullable(column.dtype)
    public = column.declared.categories
    if public is None and column.kind == "boolean":
        public = (False, True)
    if public is not None:
        return CategoryCodec(column.name, column.dtype, tuple(public), nullable), []
    sigma = gaussian_sigma(rho)
    kept = thresholded_counts(counts.category_counts(column.name), sigma, delta, noise)
    # Sorted by a public key: the order of the true counts must not show through.
    released = tuple(sorted(kept, key=lambda v: (type(v).__name__, str(v))))
    if not released and not nullable:
        raise ModelError(f"column {column.name!r}: no category is frequent enough to be released at this budget "
                         "and its dtype cannot hold missing values; declare its categories or raise epsilon")
    record = {"what": ["categories", column.name], "mechanism": "thresholded discrete Gaussian", "sigma": sigma,
              "rho": rho, "delta": delta, "released": len(released)}
    return CategoryCodec(column.name, column.dtype, released, nullable), [Charge(record, rho, delta)]


def _bounds(column: Column, counts, rho: float, noise: RandomSource) -> tuple[float, float, list[Charge]]:
    """The declared bounds, or DP ones (each costing `rho`) where none are declared."""
    grid = DATE_GRID if column.kind == "datetime" else number_grid(column.decimals)
    bounds, charges = {}, []
    for side, fact in (("lower", "min"), ("upper", "max")):
        bounds[side] = _declared_number(column.kind, getattr(column.declared, fact))
        if bounds[side] is None:
            buckets = counts.bucket_counts(column, grid, BUCKET_SIDE[side])
            bounds[side], record = dp_bound_from_counts(buckets, grid, side, rho, noise, column.name)
            charges.append(Charge(record, rho))
    low, high = bounds["lower"], bounds["upper"]
    return min(low, high), max(low, high), charges


def _uniform_codec(column: Column, low: float, high: float, bins: int) -> BinCodec:
    unit = _unit(column, (high - low) / bins)
    edges = fine_edges(low, high, unit, bins)
    return BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                    _nullable(column.dtype))


def _quantile_codec(column: Column, counts, low: float, high: float, sigma: float, bins: int,
                    noise: RandomSource) -> tuple[BinCodec, OneWay, Charge]:
    """Quantile-like bins cut from a noisy fine histogram (plus a missing cell where the dtype allows one)."""
    unit = _unit(column, (high - low) / FINE_CELLS)
    edges = fine_edges(low, high, unit, FINE_CELLS)
    fine = BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                    _nullable(column.dtype))
    histogram = counts.code_counts([fine], [(column.name,)])[(column.name,)]
    measurement = measure_counts(histogram, sigma, ("marginal", column.name), noise)
    charge = Charge(measurement.record() | {"mechanism": "discrete Gaussian", "note": "fine histogram"},
                    measurement.rho)
    noisy = measurement.noisy.astype(float)
    cells, missing = noisy[: len(edges) - 1], noisy[len(edges) - 1:]
    weights = np.clip(cells, 0, None)
    groups = quantile_groups(weights, bins)
    coarse = np.append(np.bincount(groups, weights=cells), missing)
    per_cell = np.append(np.bincount(groups), np.ones(len(missing)))
    codec = BinCodec(column.name, column.kind, column.dtype, edges, groups, weights, unit, fine.nullable)
    return codec, OneWay(column.name, coarse, sigma * math.sqrt(per_cell.mean())), charge


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


def _unit(column: Column, fine_width: float) -> float | None:
    if column.kind == "datetime":
        has_time = column.datetime_format and any(f"%{c}" in column.datetime_format for c in "HIMSfTXc")
        return SECOND if has_time or fine_width < DAY else DAY
    return None if column.decimals is None else 10.0 ** -column.decimals


def _to_numbers(kind: str, series: pd.Series) -> np.ndarray:
    """Numbers as float, dates as wall-clock seconds since 1970; NaN where missing."""
    if kind != "datetime":
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(float)
        return np.where(np.isinf(numbers), np.sign(numbers) * np.finfo(float).max, numbers)
    stamps = pd.to_datetime(series, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    seconds = stamps.to_numpy("datetime64[s]").astype(np.int64).astype(float)
    seconds[stamps.isna().to_numpy()] = np.nan
    return seconds


def _from_numbers(kind: str, dtype: str, name: str, numbers: np.ndarray) -> pd.Series:
    if kind != "datetime":
        return _astype(pd.Series(numbers, name=name), dtype)
    stamps = pd.Series(pd.to_datetime(numbers, unit="s"), name=name)
    tz = getattr(pd.api.types.pandas_dtype(dtype), "tz", None)
    if tz is not None:
        stamps = stamps.dt.tz_localize(tz, ambiguous=np.zeros(len(stamps), dtype=bool), nonexistent="shift_forward")
    return _astype(stamps, dtype)


def _declared_number(kind: str, value) -> float | None:
    if value is None:
        return None
    if kind == "datetime":
        stamp = pd.Timestamp(value)
        return float((stamp.tz_localize(None) if stamp.tz is not None else stamp).timestamp())
    return float(value)


def _nullable(dtype: str) -> bool:
    """Whether a column of this dtype can hold a missing value (a public fact of the schema)."""
    return not (dtype.startswith(("int", "uint")) or dtype == "bool")


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


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _astype(series: pd.Series, dtype: str) -> pd.Series:
    try:
        return series.astype(dtype, copy=False)
    except (TypeError, ValueError):
        return series
