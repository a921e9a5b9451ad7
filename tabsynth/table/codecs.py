"""Codecs: the maps between a column's values and integer cell codes (categories, or numbers and dates in bins),
and the model-state format of a list of parts (a codec's, a marginal's: JSON metas plus named arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.table.threads import map_in_threads
from tabsynth.table.values import from_numbers, plain_value, take_categories, to_numbers

DECODE_ROWS = 1 << 20  # rows decoded at once


OTHER = "(other)"  # the value written for categories merged because they were too rare to keep


@dataclass(frozen=True)
class CategoryCodec:
    """Codes 0..k-1 for the released categories, and a last cell for missing values if nullable.

    With `other`, the last released value is OTHER and every value not released codes to it; without, such a
    value codes to the missing cell (or, in a column that cannot hold missing values, to the first category)."""

    name: str
    dtype: str
    values: tuple
    nullable: bool
    other: bool = False

    @property
    def size(self) -> int:
        return len(self.values) + self.nullable

    def encode(self, series: pd.Series) -> np.ndarray:
        lookup = {value: code for code, value in enumerate(self.values)}
        missing = len(self.values) if self.nullable else 0
        codes = series.map(lookup).astype(float)
        if self.other:
            codes = codes.mask(codes.isna() & series.notna().to_numpy(), len(self.values) - 1)
            missing = missing if self.nullable else len(self.values) - 1
        return codes.fillna(missing).to_numpy(np.int64)

    def decode(self, codes: np.ndarray, rng: np.random.Generator, categorical: bool = False) -> pd.Series:
        """The column (code len(values) is missing); text as a pandas Categorical with `categorical`."""
        return take_categories(self.values, codes, self.dtype, self.name, categorical)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        values = [plain_value(v) for v in self.values]
        return {"type": "categories", "name": self.name, "dtype": self.dtype, "values": values,
                "nullable": self.nullable, "other": self.other}, {}


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

    def decode(self, codes: np.ndarray, rng: np.random.Generator, categorical: bool = False) -> pd.Series:
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
        else:  # a cell one float wide holds one value (such as 0): its own
            offsets[self.edges[cells + 1] <= np.nextafter(low, np.inf)] = 0.0
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

    def decode(self, codes: np.ndarray, rng: np.random.Generator, categorical: bool = False) -> pd.DataFrame:
        """Each column decoded with a generator of its own (spawned from `rng`), on several threads; text columns
        as pandas Categoricals with `categorical` (see `take_categories`)."""
        pieces = zip(range(len(self.codecs)), rng.spawn(len(self.codecs)), strict=True)
        decoded = map_in_threads(
            lambda piece: self.codecs[piece[0]].decode(codes[:, piece[0]], piece[1], categorical), pieces)
        columns = {c.name: column for c, column in zip(self.codecs, decoded, strict=True)}
        return pd.DataFrame(columns, copy=False)  # consolidating 1e6-row columns would cost more than decoding

    def state(self) -> tuple[list[dict], dict[str, np.ndarray]]:
        return pack_states(self.codecs, "c")

    @classmethod
    def from_state(cls, metas: list[dict], arrays: dict[str, np.ndarray]) -> Encoding:
        codecs = []
        for i, meta in enumerate(metas):
            if meta["type"] == "categories":
                codecs.append(CategoryCodec(meta["name"], meta["dtype"], tuple(meta["values"]), bool(meta["nullable"]),
                                            bool(meta.get("other", False))))
            else:
                codecs.append(BinCodec(meta["name"], meta["kind"], meta["dtype"], arrays[f"c{i}_edges"],
                                       arrays[f"c{i}_groups"], arrays[f"c{i}_weights"], meta["unit"],
                                       bool(meta["nullable"])))
        return cls(tuple(codecs))


def pack_states(parts, prefix: str) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The states of a model's parts (marginals, codecs, tokenizers): their metas in order, and their arrays
    in one dict, part i's keys prefixed `{prefix}{i}_`."""
    metas, arrays = [], {}
    for i, part in enumerate(parts):
        meta, part_arrays = part.state()
        metas.append(meta)
        arrays.update({f"{prefix}{i}_{key}": value for key, value in part_arrays.items()})
    return metas, arrays


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
