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
from tabsynth.privacy.accounting import exponential_epsilon, gaussian_sigma
from tabsynth.privacy.mechanisms import RandomSource, exponential_mechanism, measure_counts, thresholded_counts
from tabsynth.schema import Column

FINE_CELLS = 128  # cells of the noisy histogram that quantile-like bins are cut from
DAY, SECOND = 86_400.0, 1.0  # dates are coded as wall-clock seconds since 1970
NUMBER_GRID = np.array(sorted({0.0} | {s * m * 10.0**k for s in (-1, 1) for m in (1, 2, 5) for k in range(-4, 13)}))
DATE_GRID = pd.date_range("1800", "2200", freq="YS").to_numpy("datetime64[s]").astype(np.int64).astype(float)
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
        values = np.array([*self.values, None], dtype=object)[codes]
        return _astype(pd.Series(values, name=self.name).infer_objects(), self.dtype)

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
        present = codes < self.groups[-1] + 1
        cells = np.empty(int(present.sum()), dtype=np.int64)
        for group, rows in _rows_by_value(codes[present]).items():
            members = np.flatnonzero(self.groups == group)
            cells[rows] = rng.choice(members, size=len(rows), p=_shares(self.weights[members]))
        numbers = self.edges[cells] + rng.random(len(cells)) * (self.edges[cells + 1] - self.edges[cells])
        if self.unit is not None:
            numbers = np.round(self.edges[cells] + np.floor((numbers - self.edges[cells]) / self.unit) * self.unit, 9)
        out = np.full(len(codes), np.nan)
        out[present] = numbers
        return _from_numbers(self.kind, self.dtype, self.name, out)

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
        return pd.DataFrame({c.name: c.decode(codes[:, i], rng) for i, c in enumerate(self.codecs)})

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


def fit_encoding(table: pd.DataFrame, columns: list[Column], *, rho: float, delta: float, noise: RandomSource,
                 histogram_sigma: float | None = None, bins: int = 16, binning: str = "quantile") -> Preprocessed:
    """Domains for `columns`, spending `rho` (an equal share per mechanism) and `delta` (an equal share per
    measured category list). With quantile binning, each number and date column's one-way marginal is also
    measured, at `histogram_sigma`, on a fine grid: that is the column's one-way measurement for the model."""
    uses = [domain_mechanisms(c) for c in columns]
    share = rho / sum(uses) if sum(uses) else 0.0
    lists = sum(1 for c, used in zip(columns, uses, strict=True) if used and c.kind == "categorical")
    codecs, charges, one_way = [], [], {}
    for column in columns:
        values = table[column.name]
        if column.declared.categories is not None or column.kind in ("categorical", "boolean"):
            codec, spent = _category_codec(column, values, share, delta / max(lists, 1), noise)
        else:
            low, high, spent = _bounds(column, values, share, noise)
            if binning == "quantile":
                codec, one_way[column.name], charge = _quantile_codec(column, values, low, high, histogram_sigma,
                                                                      bins, noise)
                spent.append(charge)
            else:
                codec = _uniform_codec(column, low, high, bins)
        codecs.append(codec)
        charges += spent
    return Preprocessed(Encoding(tuple(codecs)), charges, one_way)


def _category_codec(column: Column, values: pd.Series, rho: float, delta: float,
                    noise: RandomSource) -> tuple[CategoryCodec, list[Charge]]:
    nullable = _nullable(column.dtype)
    public = column.declared.categories
    if public is None and column.kind == "boolean":
        public = (False, True)
    if public is not None:
        return CategoryCodec(column.name, column.dtype, tuple(public), nullable), []
    sigma = gaussian_sigma(rho)
    counts = {_plain(k): int(v) for k, v in values.value_counts(dropna=True, sort=False).items()}
    kept = thresholded_counts(counts, sigma, delta, noise)
    # Sorted by a public key: the order of the true counts must not show through.
    released = tuple(sorted(kept, key=lambda v: (type(v).__name__, str(v))))
    if not released and not nullable:
        raise ModelError(f"column {column.name!r}: no category is frequent enough to be released at this budget "
                         "and its dtype cannot hold missing values; declare its categories or raise epsilon")
    record = {"what": ["categories", column.name], "mechanism": "thresholded discrete Gaussian", "sigma": sigma,
              "rho": rho, "delta": delta, "released": len(released)}
    return CategoryCodec(column.name, column.dtype, released, nullable), [Charge(record, rho, delta)]


def _bounds(column: Column, values: pd.Series, rho: float, noise: RandomSource) -> tuple[float, float, list[Charge]]:
    """The declared bounds, or DP ones (each costing `rho`) where none are declared."""
    present = _to_numbers(column.kind, values)
    present = present[~np.isnan(present)]
    grid = DATE_GRID if column.kind == "datetime" else _number_grid(column.decimals)
    charges = []
    low, high = (_declared_number(column.kind, getattr(column.declared, side)) for side in ("min", "max"))
    if low is None:
        low, charge = dp_bound(present, grid, "lower", rho, noise, column.name)
        charges.append(charge)
    if high is None:
        high, charge = dp_bound(present, grid, "upper", rho, noise, column.name)
        charges.append(charge)
    return min(low, high), max(low, high), charges


def _uniform_codec(column: Column, low: float, high: float, bins: int) -> BinCodec:
    unit = _unit(column, (high - low) / bins)
    edges = fine_edges(low, high, unit, bins)
    return BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                    _nullable(column.dtype))


def _quantile_codec(column: Column, values: pd.Series, low: float, high: float, sigma: float, bins: int,
                    noise: RandomSource) -> tuple[BinCodec, OneWay, Charge]:
    """Quantile-like bins cut from a noisy fine histogram (plus a missing cell where the dtype allows one)."""
    unit = _unit(column, (high - low) / FINE_CELLS)
    edges = fine_edges(low, high, unit, FINE_CELLS)
    fine = BinCodec(column.name, column.kind, column.dtype, edges, np.arange(len(edges) - 1), np.diff(edges), unit,
                    _nullable(column.dtype))
    measurement = measure_counts(np.bincount(fine.encode(values), minlength=fine.size), sigma,
                                 ("marginal", column.name), noise)
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


def dp_bound(present: np.ndarray, grid: np.ndarray, side: str, rho: float, noise: RandomSource,
             name: str) -> tuple[float, Charge]:
    """A lower or upper bound from `grid` by the exponential mechanism.

    Score of a candidate: evidence that the data reaches it, minus the rows it would clip. The evidence is
    the rows in the grid cell just inside the candidate, plus half those of the next cell inwards, a quarter
    of the next, and so on, each cell capped; a candidate far out scores about 0. One row changes a score by
    at most 1. The cap is twice the mechanism's usual error margin, so a bound with a full cell next to it
    wins against any number of empty candidates.
    """
    epsilon = exponential_epsilon(rho)
    cap = 4.0 * math.log(len(grid) / 0.05) / epsilon
    ordered = np.sort(present)
    if side == "lower":
        clipped = np.searchsorted(ordered, grid, side="left")  # rows < candidate
        cells = np.diff(clipped, append=len(ordered))  # rows in [grid[i], grid[i+1])
        evidence = _decayed(np.minimum(cells, cap)[::-1])[::-1]
    else:
        covered = np.searchsorted(ordered, grid, side="right")  # rows <= candidate
        cells = np.diff(covered, prepend=0)  # rows in (grid[i-1], grid[i]]
        evidence = _decayed(np.minimum(cells, cap))
        clipped = len(ordered) - covered
    choice = float(grid[exponential_mechanism(evidence - clipped, epsilon, 1.0, noise)])
    record = {"what": [f"{side} bound", name], "mechanism": "exponential", "epsilon": epsilon, "rho": rho,
              "candidates": len(grid)}
    return choice, Charge(record, rho)


def _number_grid(decimals: int | None) -> np.ndarray:
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


def _shares(weights: np.ndarray) -> np.ndarray:
    total = weights.sum()
    return weights / total if total > 0 else np.full(len(weights), 1.0 / len(weights))


def _rows_by_value(codes: np.ndarray) -> dict[int, np.ndarray]:
    if codes.size == 0:
        return {}
    order = np.argsort(codes, kind="stable")
    values, starts = np.unique(codes[order], return_index=True)
    return {int(v): rows for v, rows in zip(values, np.split(order, starts[1:]), strict=True)}


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _astype(series: pd.Series, dtype: str) -> pd.Series:
    try:
        return series.astype(dtype)
    except (TypeError, ValueError):
        return series
