"""What every linked-table check shares: a table's data columns, which parent row and which person each row belongs
to, rows put in sequence order, and per-table results with an overall worst.

A row's parent is found through the table's first foreign key; its person is its parent's person, up to the root
table, whose rows are the persons (numbered by position). Rows whose key finds no parent belong to no person
(`NO_ROW`): `referential_integrity` counts them, the other checks leave them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.metrics.result import MetricResult
from tabsynth.table.dataset import Relations, TableSpec
from tabsynth.table.distances import numeric_values, tvd
from tabsynth.table.schema import Column, Schema

NO_ROW = -1
NANOSECONDS_PER_DAY = 86_400e9


def key_columns(spec: TableSpec) -> set[str]:
    """The table's primary and foreign key columns: identifiers, never compared as data."""
    return {c for c in (spec.primary_key, *(fk.column for fk in spec.foreign_keys)) if c}


def data_columns(relations: Relations, schemas: Mapping[str, Schema], name: str) -> list[Column]:
    """The table's modelled columns without its keys (PII and id columns are not modelled)."""
    keys = key_columns(relations.tables[name])
    return [c for c in schemas[name].modelled() if c.name not in keys]


def data_schema(relations: Relations, schemas: Mapping[str, Schema], name: str) -> Schema:
    return Schema(tuple(data_columns(relations, schemas, name)))


def row_positions(keys: pd.Series, parent_keys: pd.Series) -> np.ndarray:
    """Position of the parent row each key names (its first row if the key repeats); NO_ROW where none does."""
    index = pd.Index(parent_keys)
    usable = np.flatnonzero(~index.duplicated() & pd.notna(parent_keys).to_numpy())
    if not len(usable):
        return np.full(len(keys), NO_ROW)
    found = index[usable].get_indexer(keys)
    found[pd.isna(keys).to_numpy()] = NO_ROW
    return np.where(found >= 0, usable[np.maximum(found, 0)], NO_ROW)


@dataclass(frozen=True)
class Links:
    """For each table: the position of each row's parent row, and the person (root row) each row belongs to."""

    parents: dict[str, np.ndarray]
    persons: dict[str, np.ndarray]
    root: str

    @property
    def people(self) -> int:
        return len(self.persons[self.root])


def links(relations: Relations, frames: Mapping[str, pd.DataFrame]) -> Links:
    root = relations.root()
    persons = {root: np.arange(len(frames[root]))}
    parents = {root: np.full(len(frames[root]), NO_ROW)}
    for name in relations.parents_first():
        if name == root:
            continue
        fk = relations.tables[name].foreign_keys[0]
        position = row_positions(frames[name][fk.column], frames[fk.parent][fk.parent_column])
        parents[name] = position
        persons[name] = np.where(position >= 0, persons[fk.parent][np.maximum(position, 0)], NO_ROW)
    return Links(parents, persons, root)


def order_values(frame: pd.DataFrame, spec: TableSpec) -> np.ndarray:
    """The order column as numbers (dates in days); the row order where the table has no order column."""
    if spec.order_by is None:
        return np.arange(len(frame), dtype=float)
    values = frame[spec.order_by]
    numbers = numeric_values(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        return numbers / NANOSECONDS_PER_DAY
    return numbers


@dataclass(frozen=True)
class Sequences:
    """A child table's rows that have a parent, sorted by parent then order: `rows` are positions in the table."""

    rows: np.ndarray
    group: np.ndarray  # the parent (or person) row of each sorted row
    position: np.ndarray  # 0 for a parent's first event, 1 for the next...
    order: np.ndarray  # the order values, sorted (days for dates)

    @property
    def follows(self) -> np.ndarray:
        """True for each sorted row (after the first) that continues the previous row's sequence."""
        return self.group[1:] == self.group[:-1]


def sequences(frame: pd.DataFrame, spec: TableSpec, group: np.ndarray) -> Sequences:
    order = order_values(frame, spec)
    kept = np.flatnonzero(group >= 0)
    sort = np.lexsort((np.nan_to_num(order[kept], nan=np.inf), group[kept]))  # last key sorts first
    rows, sorted_group = kept[sort], group[kept][sort]
    starts = np.r_[True, sorted_group[1:] != sorted_group[:-1]] if len(rows) else np.zeros(0, dtype=bool)
    first_index = np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))
    return Sequences(rows, sorted_group, np.arange(len(rows)) - first_index, order[rows])


def tvd_or_disjoint(real_codes: np.ndarray, synthetic_codes: np.ndarray) -> float:
    """TVD of two code arrays; 1 when exactly one side has no values, 0 when neither has."""
    if not len(real_codes) or not len(synthetic_codes):
        return float(len(real_codes) != len(synthetic_codes))
    return tvd(real_codes, synthetic_codes)


def count_codes(counts: np.ndarray) -> np.ndarray:
    """Bins for numbers of children or events, fixed in advance (no bin is learnt from the rows): 0 to 7 each their
    own bin, then doubling bins 8-15, 16-31, 32-63... so a long tail is compared without a bin per value."""
    counts = np.asarray(counts, dtype=float)
    tail = 8 + np.floor(np.log2(np.maximum(counts, 8) / 8))
    return np.where(counts < 8, counts, tail).astype(np.int64)


def per_table(name: str, values: Mapping[str, float], goal: str, description: str,
              details: Mapping[str, dict] | None = None, *, reads_private_rows: bool = True,
              what: str = "table", summary: Mapping | None = None) -> list[MetricResult]:
    """`name.<table>` per table, then `name`: the worst table's value (0 for a 'min' goal when there is no table,
    1 for a 'max' goal), so one policy rule covers any dataset. A NaN anywhere makes the overall NaN."""
    details = details or {}
    results = [MetricResult(f"{name}.{key}", float(value), goal, f"{description} ({what} {key})",
                            reads_private_rows, details=dict(details.get(key, {})))
               for key, value in values.items()]
    figures = np.array(list(values.values()), dtype=float)
    if not len(figures):
        overall, worst = (0.0 if goal == "min" else 1.0), None
    elif not np.isfinite(figures).any():
        overall, worst = float("nan"), None
    else:
        pick = int(np.nanargmax(figures) if goal == "min" else np.nanargmin(figures))
        overall = float(figures[pick]) if np.isfinite(figures).all() else float("nan")
        worst = list(values)[pick]
    overall_details = {"per_" + what: {key: _plain(v) for key, v in values.items()}, "worst": worst,
                       **(summary or {})}
    if not len(figures):
        overall_details["reason"] = f"no {what} to compare"
    results.append(MetricResult(name, overall, goal, f"{description}; the worst {what}", reads_private_rows,
                                details=overall_details))
    return results


def _plain(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
