"""Columns ↔ integer tokens for the ARGN; every modelled column becomes one or two tokens.

- categories and booleans: one token per value held by at least `rare_threshold` rows, one shared "rare"
  token for the others (decoded to one of them, uniformly), and a "missing" token where the column has gaps;
- numbers and dates: cells of consecutive distinct values of about equal mass (quantile cells; a heavy value
  keeps a cell of its own). With few cells, one token per cell; with many, a coarse token (the quantile bin)
  and a fine token (the cell within the bin). A cell holding one common value decodes to it; a cell of a
  discrete column of a few distinct values (seats, children; at most 25) to one of its values, as often as the
  real rows hold it, values of fewer than rare_threshold rows alike (a uniform draw would make values that never
  occur: 150 seats between the real 149 and 172); any other cell to a uniform draw between its first value and the next
  cell's, on the column's grid (whole units, days);
- DP models: the codecs of `table.codecs` (domains paid for with budget), one token each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tabsynth.privacy.domains import quantile_groups
from tabsynth.table.codecs import Codec, Encoding, pack_states
from tabsynth.table.infer import DISCRETE_MAX_DISTINCT
from tabsynth.table.schema import Column
from tabsynth.table.values import as_dtype, from_numbers, to_numbers

MIN_ROWS_PER_BIN = 20
_TIME_UNITS_NS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)


@dataclass(frozen=True)
class CategoryTokens:
    """Common values, then a shared token for the rare ones (if any), then missing (if the column has gaps)."""

    name: str
    dtype: str
    values: tuple
    rare: tuple
    missing: bool

    @property
    def sizes(self) -> tuple[int, ...]:
        return (len(self.values) + bool(self.rare) + self.missing,)

    @property
    def valid(self) -> np.ndarray:
        return np.ones(self.sizes, dtype=bool)

    def encode(self, series: pd.Series) -> np.ndarray:
        lookup = {value: code for code, value in enumerate(self.values)}
        lookup |= {value: len(self.values) for value in self.rare}
        codes = series.map(lookup).astype(float).fillna(self.sizes[0] - 1).to_numpy(np.int64)
        return codes[:, None]

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.Series:
        codes = tokens[:, 0]
        values = np.array([*self.values, None, None], dtype=object)[np.minimum(codes, len(self.values) + 1)]
        is_rare = (codes == len(self.values)) & bool(self.rare)
        if is_rare.any():
            values[is_rare] = np.array(self.rare, dtype=object)[rng.integers(len(self.rare), size=int(is_rare.sum()))]
        return as_dtype(pd.Series(values, name=self.name).infer_objects(), self.dtype)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"type": "categories", "name": self.name, "dtype": self.dtype, "values": _plain(self.values),
                "rare": _plain(self.rare), "missing": self.missing}, {}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> CategoryTokens:
        return cls(meta["name"], meta["dtype"], tuple(meta["values"]), tuple(meta["rare"]), bool(meta["missing"]))


@dataclass(frozen=True, eq=False)
class NumberTokens:
    """Quantile cells [low, high] of numbers (dates: wall-clock nanoseconds), each a (coarse, fine) token pair."""

    name: str
    kind: str
    dtype: str
    low: np.ndarray  # first value of each cell
    high: np.ndarray  # last value a cell decodes to
    exact: np.ndarray  # the cell holds one common value: decode to it
    coarse: np.ndarray  # coarse token of each cell (non-decreasing)
    fine: np.ndarray  # fine token of each cell within its coarse token
    unit: float | None  # decoded values are whole multiples of this
    missing: bool
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # discrete: its distinct values (sorted)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))  # rows holding each of `values`

    @property
    def sizes(self) -> tuple[int, ...]:
        coarse = int(self.coarse[-1]) + 1 + self.missing
        fine = int(self.fine.max()) + 1
        return (coarse,) if fine == 1 else (coarse, fine)

    @property
    def valid(self) -> np.ndarray:
        valid = np.zeros(self.sizes, dtype=bool).reshape(self.sizes[0], -1)
        valid[self.coarse, self.fine] = True
        valid[-1, 0] |= self.missing
        return valid.reshape(self.sizes)

    def encode(self, series: pd.Series) -> np.ndarray:
        numbers = to_numbers(self.kind, series, unit="ns", infinite="missing")
        cells = np.clip(np.searchsorted(self.low, np.nan_to_num(numbers), side="right") - 1, 0, len(self.low) - 1)
        tokens = np.stack([self.coarse[cells], self.fine[cells]], axis=1)
        tokens[np.isnan(numbers)] = (self.sizes[0] - 1, 0)
        return tokens[:, :len(self.sizes)]

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.Series:
        fine = tokens[:, 1] if tokens.shape[1] > 1 else np.zeros(len(tokens), dtype=np.int64)
        lookup = np.full(self.valid.reshape(self.sizes[0], -1).shape, -1)
        lookup[self.coarse, self.fine] = np.arange(len(self.low))
        cells = lookup[tokens[:, 0], fine]
        present = cells >= 0
        low, high = self.low[cells[present]], self.high[cells[present]]
        if self.unit is None:
            drawn = low + rng.random(len(low)) * (high - low)
        else:
            steps = np.round((high - low) / self.unit) + 1
            drawn = low + np.floor(rng.random(len(low)) * steps) * self.unit
            if self.unit < 1:  # decimals: undo the float error that could step past the column's maximum
                drawn = np.round(drawn, 9)
        if self.values.size:
            chosen = self._draw_values(cells[present], rng)
            drawn = np.where(np.isnan(chosen), drawn, chosen)
        numbers = np.full(len(tokens), np.nan)
        numbers[present] = np.where(self.exact[cells[present]], low, drawn)
        return from_numbers(self.kind, self.dtype, self.name, numbers, unit="ns")

    def _draw_values(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One of each cell's real values, drawn in proportion to its weight (the rows that hold it; rare values
        alike); NaN for a cell without a value (the caller draws on the grid instead)."""
        total = np.append(0, np.cumsum(self.counts))
        before = total[np.searchsorted(self.values, self.low, side="left")]
        after = total[np.searchsorted(self.values, self.high, side="right")]
        drawn = before[cells] + rng.random(len(cells)) * (after[cells] - before[cells])
        index = np.minimum(np.searchsorted(total[1:], drawn, side="right"), len(self.values) - 1)
        return np.where(after[cells] > before[cells], self.values[index], np.nan)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"type": "numbers", "name": self.name, "kind": self.kind, "dtype": self.dtype, "unit": self.unit,
                "missing": self.missing}
        return meta, {"low": self.low, "high": self.high, "exact": self.exact, "coarse": self.coarse,
                      "fine": self.fine, "values": self.values, "counts": self.counts}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> NumberTokens:
        return cls(meta["name"], meta["kind"], meta["dtype"], arrays["low"], arrays["high"], arrays["exact"],
                   arrays["coarse"], arrays["fine"], meta["unit"], bool(meta["missing"]),
                   arrays.get("values", np.zeros(0)), arrays.get("counts", np.zeros(0)))


@dataclass(frozen=True)
class DomainTokens:
    """A DP codec of `privacy.preprocess` (its domain paid for with budget), as one token."""

    codec: Codec

    @property
    def name(self) -> str:
        return self.codec.name

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.codec.size,)

    @property
    def valid(self) -> np.ndarray:
        return np.ones(self.sizes, dtype=bool)

    def encode(self, series: pd.Series) -> np.ndarray:
        return self.codec.encode(series)[:, None]

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.Series:
        return self.codec.decode(tokens[:, 0], rng)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta, arrays = self.codec.state()
        return {"type": "domain", "codec": meta}, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> DomainTokens:
        return cls(Encoding.from_state([meta["codec"]], {f"c0_{k}": v for k, v in arrays.items()}).codecs[0])


ColumnTokens = CategoryTokens | NumberTokens | DomainTokens
_TYPES = {"categories": CategoryTokens, "numbers": NumberTokens, "domain": DomainTokens}


@dataclass(frozen=True)
class TableTokens:
    """The tokenizers of all modelled columns, in order; a column's tokens are consecutive."""

    columns: tuple[ColumnTokens, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def sizes(self) -> list[int]:
        return [size for c in self.columns for size in c.sizes]

    @property
    def owners(self) -> list[int]:
        """The column of each token."""
        return [i for i, c in enumerate(self.columns) for _ in c.sizes]

    def slices(self) -> list[slice]:
        starts = np.cumsum([0] + [len(c.sizes) for c in self.columns])
        return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """(rows × tokens) int64."""
        parts = [c.encode(table[c.name]) for c in self.columns]
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(table), 0), dtype=np.int64)

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        return pd.DataFrame({c.name: c.decode(tokens[:, part], rng)
                             for c, part in zip(self.columns, self.slices(), strict=True)})

    def state(self) -> tuple[list[dict], dict[str, np.ndarray]]:
        return pack_states(self.columns, "t")

    @classmethod
    def from_state(cls, metas: list[dict], arrays: dict[str, np.ndarray]) -> TableTokens:
        return cls(tuple(_TYPES[meta["type"]].from_state(meta, _prefixed(arrays, f"t{i}_"))
                         for i, meta in enumerate(metas)))


def fit_tokens(table: pd.DataFrame, columns: list[Column], *, rare_threshold: int, bins: int,
               sub_bins: int) -> TableTokens:
    """Tokenizers read from the (private) table: for models that are not differentially private."""
    return TableTokens(tuple(
        fit_category_tokens(c, table[c.name], rare_threshold) if c.kind in ("categorical", "boolean")
        else fit_number_tokens(c, table[c.name], rare_threshold, bins, sub_bins)
        for c in columns))


def fit_category_tokens(column: Column, values: pd.Series, rare_threshold: int) -> CategoryTokens:
    counts = values.value_counts(dropna=True)
    common = tuple(_plain(v) for v, k in counts.items() if k >= rare_threshold)
    rare = tuple(_plain(v) for v, k in counts.items() if k < rare_threshold)
    if not common and not rare:
        common = (None,)
    return CategoryTokens(column.name, column.dtype, common, rare, bool(values.isna().any()))


def fit_number_tokens(column: Column, values: pd.Series, rare_threshold: int, bins: int,
                      sub_bins: int) -> NumberTokens:
    numbers = to_numbers(column.kind, values, unit="ns", infinite="missing")
    distinct, counts = np.unique(numbers[~np.isnan(numbers)], return_counts=True)
    if distinct.size == 0:
        distinct, counts = np.zeros(1), np.zeros(1, dtype=np.int64)
    unit = _unit(column, distinct)
    rows = int(counts.sum())
    bins = max(2, min(bins, rows // MIN_ROWS_PER_BIN))  # small tables: fewer, fuller bins to learn from
    cell_of_value = quantile_groups(counts.astype(float), max(bins, min(bins * sub_bins, rows // rare_threshold)))
    first = np.flatnonzero(np.diff(cell_of_value, prepend=-1))
    low, cell_counts = distinct[first], np.add.reduceat(counts, first)
    high = np.append(low[1:] - (unit or 0.0), distinct[-1])
    exact = (np.diff(np.append(first, len(distinct))) == 1) & (cell_counts >= rare_threshold)
    coarse = quantile_groups(cell_counts.astype(float), bins) if len(low) > bins else np.arange(len(low))
    fine = np.arange(len(low)) - np.flatnonzero(np.diff(coarse, prepend=-1))[coarse]
    # Only a few values: a count column of many (a plane's 1 to 300 flights) would hand out each person's own count.
    # As for categories, values fewer than rare_threshold rows hold are drawn alike (their mean count), so no rare
    # value's own count shows in the output
    few = column.discrete and rows and distinct.size <= DISCRETE_MAX_DISTINCT
    weights = counts.astype(float)
    rare = counts < rare_threshold
    weights[rare] = counts[rare].mean() if rare.any() else 0.0
    support = (distinct, weights) if few else (np.zeros(0), np.zeros(0))
    return NumberTokens(column.name, column.kind, column.dtype, low, high, exact, coarse, fine, unit,
                        bool(np.isnan(numbers).any()), *support)


def _unit(column: Column, distinct: np.ndarray) -> float | None:
    if column.kind == "datetime":
        return float(next(u for u in _TIME_UNITS_NS if np.all(np.mod(distinct, u) == 0)))
    return None if column.decimals is None else 10.0 ** -column.decimals


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key.removeprefix(prefix): value for key, value in arrays.items() if key.startswith(prefix)}


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value
