"""Linked tables as the tables the models learn, and back.

Each table becomes a frame of its modelled attributes (keys, PII and the order column left out), plus, for each
child table, the number of its child rows (`<child>.__count`) and the order value of its first child
(`<child>.__start`, when the child has an order column). A child table's rows are sorted per parent by the
order column, numbered (`position`) and carry `__gap`, the difference of the order column to the previous row of
the same parent (0 for the first). Sequences longer than a table's cap (a high quantile of the number of
children per parent) are cut to their first `cap` rows, and the rows hanging from rows cut are dropped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.table.dataset import ForeignKey, Relations
from tabsynth.table.infer import conform, infer_column
from tabsynth.table.schema import Column, Schema
from tabsynth.table.values import from_numbers, to_numbers

GAP = "__gap"
TIME_UNITS_NS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)


def count_name(child: str) -> str:
    return f"{child}.__count"


def start_name(child: str) -> str:
    return f"{child}.__start"


def parent_key(relations: Relations, name: str) -> ForeignKey | None:
    """The one foreign key that hangs `name` from its parent (None for the root)."""
    keys = relations.tables[name].foreign_keys
    if len(keys) > 1:
        raise ModelError(f"table {name!r} references {len(keys)} tables; the linked model needs a tree, "
                         f"each table hanging from one parent")
    return keys[0] if keys else None


def key_columns(relations: Relations, name: str) -> set[str]:
    spec = relations.tables[name]
    return {c for c in (spec.primary_key, *(fk.column for fk in spec.foreign_keys)) if c}


def attribute_columns(relations: Relations, schema: Schema, name: str) -> list[Column]:
    """The modelled columns of a table, less its keys and, for a child, its order column."""
    spec = relations.tables[name]
    left_out = key_columns(relations, name) | ({spec.order_by} if spec.foreign_keys else set())
    return [c for c in schema.modelled() if c.name not in left_out]


@dataclass(frozen=True)
class OrderGaps:
    """How a child's order column becomes gaps and back: datetimes count in whole `unit`s of nanoseconds."""

    column: Column
    unit: float

    def gaps(self, values: pd.Series, positions: np.ndarray) -> np.ndarray:
        numbers = to_numbers(self.column.kind, values, unit="ns")
        gaps = np.diff(numbers, prepend=np.nan) / self.unit
        gaps[positions == 0] = 0.0
        return gaps

    def rebuild(self, starts: np.ndarray, gaps: np.ndarray, positions: np.ndarray) -> pd.Series:
        """Order values from each row's sequence start (as `to_numbers` in ns) and the cumulative sum of gaps;
        rows sorted by sequence and position."""
        steps = np.where(positions == 0, 0.0, np.clip(np.nan_to_num(gaps), 0, None)) * self.unit
        total = np.cumsum(steps)
        first = np.maximum.accumulate(np.where(positions == 0, np.arange(len(positions)), 0))
        numbers = starts + total - total[first]
        if self.column.kind == "datetime":
            numbers = np.round(numbers / self.unit) * self.unit
        elif self.column.decimals is not None:
            numbers = np.round(numbers, self.column.decimals)
        numbers[np.isnan(gaps) & (positions > 0)] = np.nan
        return from_numbers(self.column.kind, self.column.dtype, self.column.name, numbers, unit="ns")

    def gap_column(self, gaps: np.ndarray) -> Column:
        decimals = 0 if self.column.kind == "datetime" else self.column.decimals
        inferred = infer_column(GAP, pd.Series(gaps, dtype=float))
        return dataclasses.replace(inferred, kind="numerical", dtype="float64", decimals=decimals,
                                   reason="time to the previous row of the same parent")


def order_gaps(column: Column, values: pd.Series, positions: np.ndarray) -> OrderGaps:
    if column.kind not in ("datetime", "numerical"):
        raise ModelError(f"order column {column.name!r} is {column.kind}; it must hold dates or numbers")
    if column.kind != "datetime":
        return OrderGaps(column, 1.0)
    gaps = OrderGaps(column, 1.0).gaps(values, positions)
    gaps = gaps[np.isfinite(gaps)]
    unit = next(u for u in TIME_UNITS_NS if np.all(np.mod(gaps, u) == 0))
    return OrderGaps(column, float(unit))


@dataclass
class Prepared:
    """What the models learn from: per table its frame and modelled columns; per child table, each row's parent
    row, position within the parent, and the cap on sequence lengths."""

    frames: dict[str, pd.DataFrame]
    columns: dict[str, list[Column]]
    parent_rows: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    caps: dict[str, int]
    orders: dict[str, OrderGaps]


def prepare(frames: Mapping[str, pd.DataFrame], relations: Relations, schemas: Mapping[str, Schema],
            length_quantile: float) -> Prepared:
    kept, prepared = {}, Prepared({}, {}, {}, {}, {}, {})
    for name in relations.parents_first():
        rows = conform(frames[name], schemas[name]).reset_index(drop=True)
        fk = parent_key(relations, name)
        if fk is not None:
            rows = _sequences(name, rows, fk, kept[fk.parent], relations, schemas[name], length_quantile, prepared)
        kept[name] = rows
    for name in relations.parents_first():
        _frame(name, kept, relations, schemas, prepared)
    return prepared


def _sequences(name: str, rows: pd.DataFrame, fk: ForeignKey, parent: pd.DataFrame, relations: Relations,
               schema: Schema, length_quantile: float, prepared: Prepared) -> pd.DataFrame:
    """Rows of a child table whose parent was kept, sorted by parent and order, cut to the cap."""
    parent_rows = pd.Index(parent[fk.parent_column]).get_indexer(rows[fk.column])
    rows = rows.assign(_parent=parent_rows)[parent_rows >= 0]
    order_by = relations.tables[name].order_by
    rows = rows.sort_values(["_parent", order_by] if order_by else ["_parent"], kind="mergesort")
    positions = rows.groupby("_parent").cumcount().to_numpy()
    counts = np.bincount(rows["_parent"], minlength=len(parent))
    cap = max(1, math.ceil(float(np.quantile(counts, length_quantile)))) if len(counts) else 1
    keep = positions < cap
    rows = rows[keep].reset_index(drop=True)
    prepared.parent_rows[name] = rows.pop("_parent").to_numpy()
    prepared.positions[name], prepared.caps[name] = positions[keep], cap
    if order_by:
        prepared.orders[name] = order_gaps(schema[order_by], rows[order_by], prepared.positions[name])
    return rows


def _frame(name: str, kept: dict, relations: Relations, schemas: Mapping[str, Schema], prepared: Prepared) -> None:
    """The table's modelled attributes, its children's counts and starts, and its own gaps."""
    columns = attribute_columns(relations, schemas[name], name)
    frame = kept[name][[c.name for c in columns]].copy()
    attributes = len(columns)
    for child in relations.children(name):
        counts = np.bincount(prepared.parent_rows[child], minlength=len(frame))
        frame[count_name(child)] = counts
        columns.append(Column(count_name(child), "numerical", "int64", reason=f"rows of {child} per row",
                              discrete=True, decimals=0))
        order = prepared.orders.get(child)
        if order is not None:
            first = prepared.positions[child] == 0
            firsts = pd.Series(kept[child][order.column.name][first].to_numpy(),
                               index=prepared.parent_rows[child][first])
            frame[start_name(child)] = firsts.reindex(range(len(frame))).to_numpy()
            columns.append(dataclasses.replace(order.column, name=start_name(child),
                                               reason=f"order value of the first row of {child}"))
    if name in prepared.orders:
        frame[GAP] = prepared.orders[name].gaps(kept[name][prepared.orders[name].column.name],
                                                prepared.positions[name])
        columns.append(prepared.orders[name].gap_column(frame[GAP].to_numpy()))
    clashes = [c.name for c in columns[attributes:] if c.name in kept[name].columns]
    if clashes:
        raise ModelError(f"table {name!r}: columns {clashes} clash with the names the linked model adds")
    prepared.frames[name], prepared.columns[name] = frame, columns
