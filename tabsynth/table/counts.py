"""The count queries a DP model asks of a private table, and their in-memory answers.

The mechanisms of `dp-marginal` (category thresholding, bound search, fine histograms, AIM's marginals) only
ever need counts, so a model that reads the table through a `Counts` object can be fitted by any engine that
can count: pandas here, DuckDB or Spark for tables larger than memory. An engine answers each query exactly
as the pandas code below does; the tests hold every engine to that.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from tabsynth.table.codecs import Codec
from tabsynth.table.schema import Column
from tabsynth.table.values import plain_value, to_numbers

Clique = tuple[str, ...]
BucketRequest = tuple[Column, np.ndarray, str]  # the arguments of a bucket_counts query: column, grid, side


@runtime_checkable
class Counts(Protocol):
    """Answers the count queries a DP model asks of a private table; never returns rows."""

    def category_counts(self, column: str) -> dict:
        """Non-missing value -> number of rows holding it (keys are Python scalars)."""

    def bucket_counts(self, column: Column, grid: np.ndarray, side: str) -> np.ndarray:
        """np.bincount(np.searchsorted(grid, x, side=side), minlength=len(grid) + 1) over the column's present
        values x as numbers (floats; ±inf as ±float max; dates as seconds since 1970: wall-clock time,
        a zoned one in its own zone, as `values.to_numbers`)."""

    def code_counts(self, codecs: Sequence[Codec], cliques: Sequence[Clique]) -> dict[Clique, np.ndarray]:
        """For each clique (names of codecs), the flat C-order counts over the codes of its columns."""

    def domain_counts(self, categories: Sequence[str],
                      buckets: Sequence[BucketRequest]) -> tuple[dict[str, dict], list[np.ndarray]]:
        """category_counts of each column in `categories` (by name) and bucket_counts of each request in
        `buckets` (in order): what a DP domain step asks, in as few scans of the table as the engine can."""


class CountsByColumn:
    """domain_counts as one category_counts or bucket_counts query per request: right where a query costs no
    scan (a table in memory); an engine that scans answers them all in one or two scans instead."""

    def domain_counts(self, categories: Sequence[str],
                      buckets: Sequence[BucketRequest]) -> tuple[dict[str, dict], list[np.ndarray]]:
        return ({name: self.category_counts(name) for name in categories},
                [self.bucket_counts(column, grid, side) for column, grid, side in buckets])


class FrameCounts(CountsByColumn):
    """Counts over a pandas DataFrame (the table fits in memory); each codec encodes the table once."""

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self._codes: dict[int, tuple[Codec, np.ndarray]] = {}  # id(codec) -> (codec kept alive, its codes)

    def __len__(self) -> int:
        return len(self.table)

    def category_counts(self, column: str) -> dict:
        counts = self.table[column].value_counts(dropna=True, sort=False)
        return {plain_value(value): int(count) for value, count in counts.items()}

    def bucket_counts(self, column: Column, grid: np.ndarray, side: str) -> np.ndarray:
        numbers = to_numbers(column.kind, self.table[column.name])
        return bucket_counts(numbers[~np.isnan(numbers)], grid, side)

    def code_counts(self, codecs: Sequence[Codec], cliques: Sequence[Clique]) -> dict[Clique, np.ndarray]:
        by_name = {codec.name: codec for codec in codecs}
        return {clique: self._clique_counts([by_name[name] for name in clique]) for clique in cliques}

    def encoded(self, codec: Codec) -> np.ndarray:
        if id(codec) not in self._codes:
            self._codes[id(codec)] = (codec, codec.encode(self.table[codec.name]))
        return self._codes[id(codec)][1]

    def _clique_counts(self, codecs: list[Codec]) -> np.ndarray:
        if not codecs:
            return np.bincount(np.zeros(len(self.table), np.int64), minlength=1)
        shape = tuple(codec.size for codec in codecs)
        cells = np.ravel_multi_index(tuple(self.encoded(codec) for codec in codecs), shape)
        return np.bincount(cells, minlength=int(np.prod(shape)))


def bucket_counts(present: np.ndarray, grid: np.ndarray, side: str) -> np.ndarray:
    """Rows per bucket of `grid`: np.bincount(np.searchsorted(grid, present, side), minlength=len(grid) + 1)."""
    return np.bincount(np.searchsorted(grid, present, side=side), minlength=len(grid) + 1)


def as_counts(table) -> Counts:
    """A Counts object as is; a DataFrame wrapped in FrameCounts."""
    return FrameCounts(table) if isinstance(table, pd.DataFrame) else table


def maximal_cliques(cliques: Sequence[Clique]) -> list[Clique]:
    """The cliques whose columns are not all inside another requested clique (one of each column set):
    the others are sums of these, so an engine need only count these."""
    sets = {frozenset(c): c for c in sorted(cliques, key=len, reverse=True)}
    inside_another = {part for columns in sets for part in _subsets(columns, len(columns) - 1)}
    return [clique for columns, clique in sets.items() if columns not in inside_another]


def _subsets(columns, largest: int) -> list[frozenset]:
    """Every subset of `columns` of at most `largest` columns."""
    return [frozenset(part) for k in range(largest + 1) for part in itertools.combinations(sorted(columns), k)]


def project_counts(counts: np.ndarray, clique: Clique, sizes: dict[str, int], onto: Clique) -> np.ndarray:
    """Flat counts over `clique` summed down to `onto` (a subset, in any order), flat C order."""
    table = counts.reshape([sizes[name] for name in clique])
    dropped = tuple(i for i, name in enumerate(clique) if name not in onto)
    kept = [name for name in clique if name in onto]
    summed = table.sum(axis=dropped) if dropped else table
    return np.ascontiguousarray(np.transpose(summed, [kept.index(name) for name in onto])).ravel()


GROUP_CELLS = 2**18  # cells of one counted group: 2 MB of counts, small enough to stay in cache while counting
GROUP_WIDTH = 6


def covering_groups(cliques: Sequence[Clique], sizes: dict[str, int], max_cells: int = GROUP_CELLS,
                    max_width: int = GROUP_WIDTH) -> list[Clique]:
    """Column groups such that every clique lies inside one: each uncovered maximal clique, widest first, grown
    greedily by the column that brings the most uncovered cliques inside it while its cells stay under
    `max_cells`. Counting a group of five columns costs about what one three-way clique does and answers up to
    ten of them, so the 220 triples of 12 columns take about 35 counts instead of 220."""
    maximal = maximal_cliques(cliques)
    todo = {frozenset(clique) for clique in maximal}
    longest = max((len(clique) for clique in maximal), default=0)
    groups: list[Clique] = []
    for seed in sorted(todo, key=lambda c: (-len(c), sorted(c))):
        if seed not in todo:
            continue
        group, cells = set(seed), int(np.prod([sizes[name] for name in seed]))
        while len(group) < max_width:
            gains = {name: _brought_in(group, name, todo, longest) for name in sizes
                     if name not in group and cells * sizes[name] <= max_cells}
            best = max(gains, key=lambda name: gains[name], default=None)
            if best is None or gains[best] == 0:
                break
            group.add(best)
            cells *= sizes[best]
        todo.difference_update(_subsets(group, longest))
        groups.append(tuple(name for name in sizes if name in group))
    return groups


def _brought_in(group: set[str], name: str, todo: set[frozenset], longest: int) -> int:
    """How many cliques of `todo` lie inside group + name but not inside group (those holding name)."""
    return sum(frozenset((*rest, name)) in todo for k in range(longest)
               for rest in itertools.combinations(sorted(group), k))


class CliqueTally:
    """Counts of many cliques from code columns streamed in batches: a few covering groups of columns are
    counted (one bincount per batch each), every clique is summed from a group holding it at the end."""

    def __init__(self, codecs: Sequence[Codec], cliques: Sequence[Clique]):
        self.cliques = list(cliques)
        self.sizes = {codec.name: codec.size for codec in codecs}
        groups = covering_groups(self.cliques, self.sizes)
        self.found = {group: np.zeros(int(np.prod([self.sizes[n] for n in group])), np.int64) for group in groups}

    @property
    def names(self) -> list[str]:
        """The columns whose codes `add` needs."""
        return [name for name in self.sizes if any(name in clique for clique in self.found)]

    def add(self, codes: dict[str, np.ndarray], rows: int) -> None:
        """One batch of `rows` rows: codes of each column in `names`."""
        small = {name: np.asarray(values, np.int32) for name, values in codes.items()}  # codes: < 2**31 cells
        for clique, counts in self.found.items():
            if not clique:
                counts[0] += rows
                continue
            cells = small[clique[0]].astype(np.int64 if counts.size >= 2**31 else np.int32)  # a copy
            for name in clique[1:]:
                cells *= self.sizes[name]
                cells += small[name]
            counts += np.bincount(cells, minlength=counts.size)

    def result(self) -> dict[Clique, np.ndarray]:
        return derive_counts(self.found, self.cliques, self.sizes)


def derive_counts(found: dict[Clique, np.ndarray], cliques: Sequence[Clique],
                  sizes: dict[str, int]) -> dict[Clique, np.ndarray]:
    """Every requested clique's counts from those of the maximal cliques in `found`."""
    out = {}
    for clique in cliques:
        source = next(c for c in found if set(clique) <= set(c))
        out[clique] = project_counts(found[source], source, sizes, clique).astype(np.int64)
    return out
