"""Linked tables as the tables the models learn, and back.

Each table becomes a frame of its modelled attributes (keys, PII and the order column left out), plus, for each
child table, the number of its child rows (`<child>.__count`), the order value of its first child
(`<child>.__start`, when the child has an order column) and the distance from the first child's order value to
the last's (`<child>.__span`, in the gaps' units; not for a chained child, whose gaps are its distances). A
child table's rows are sorted per parent by the
order column, numbered (`position`) and carry `__gap`, the difference of the order column to the previous row of
the same parent (0 for the first). Sequences longer than a table's cap (a high quantile of the number of
children per parent) are cut to their first `cap` rows, and the rows hanging from rows cut are dropped.

A category of a child table that (nearly) never changes within a parent (a plane's carrier, a card's currency) is
hoisted: held once per parent as `<child>.<column>` (the first row's value), and copied to every row of the
parent, so a long sequence does not drift from it one step at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.models.linked.offsets import Offset, find_offset, time_unit
from tabsynth.table.dataset import ForeignKey, Relations
from tabsynth.table.infer import conform, infer_column
from tabsynth.table.schema import Column, Schema
from tabsynth.table.values import from_numbers, to_numbers

GAP = "__gap"
HOIST_SHARE = 0.95  # of the parents with two or more children, the share where a category must never change
MIN_HOIST_PARENTS = 10


def count_name(child: str) -> str:
    return f"{child}.__count"


def start_name(child: str) -> str:
    return f"{child}.__start"


def span_name(child: str) -> str:
    return f"{child}.__span"


def hoisted_name(child: str, column: str) -> str:
    return f"{child}.{column}"


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

    def spread(self, gaps: np.ndarray, positions: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Each sequence's gaps scaled to add up to its span (rows sorted by sequence and position): a sequence of
        ~100 gaps drawn one by one drifts far from the time it really covers, past the end of the data; the span
        is learnt with the parent, so the last row lands where real sequences end. Gaps that add up to 0 become
        equal steps; a missing span leaves the gaps as drawn."""
        steps = np.where(positions == 0, 0.0, np.clip(np.nan_to_num(gaps), 0, None))
        sequence = np.cumsum(positions == 0) - 1
        totals, later = np.bincount(sequence, steps), np.bincount(sequence, positions > 0)
        spans = np.clip(spans, 0, None)
        scale = np.divide(spans, totals[sequence], out=np.zeros_like(spans), where=totals[sequence] > 0)
        even = np.divide(spans, later[sequence], out=np.zeros_like(spans), where=later[sequence] > 0)
        spread = np.where(totals[sequence] > 0, steps * scale, np.where(positions > 0, even, 0.0))
        spread = np.where(np.isnan(spans), gaps, spread)
        return np.where(np.isnan(gaps), np.nan, spread)

    def span_column(self, spans: np.ndarray, child: str) -> Column:
        return dataclasses.replace(self.gap_column(spans), name=span_name(child),
                                   reason=f"time from the first row of {child} to the last")

    def gap_column(self, gaps: np.ndarray) -> Column:
        decimals = 0 if self.column.kind == "datetime" else self.column.decimals
        inferred = infer_column(GAP, pd.Series(gaps, dtype=float))
        return dataclasses.replace(inferred, kind="numerical", dtype="float64", decimals=decimals,
                                   reason="time to the previous row of the same parent")


def order_gaps(column: Column, values: pd.Series, positions: np.ndarray) -> OrderGaps:
    if column.kind not in ("datetime", "numerical"):
        raise ModelError(f"order column {column.name!r} is {column.kind}; it must hold dates or numbers")
    return OrderGaps(column, time_unit(column.kind, OrderGaps(column, 1.0).gaps(values, positions)))


@dataclass
class Prepared:
    """What the models learn from: per table its frame and modelled columns, and the columns held as distances
    after its order column; per child table, each row's parent row, position within the parent, the cap on
    sequence lengths and how its order column becomes gaps."""

    frames: dict[str, pd.DataFrame]
    columns: dict[str, list[Column]]
    parent_rows: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    caps: dict[str, int]
    orders: dict[str, OrderGaps]
    offsets: dict[str, list[Offset]]
    hoisted: dict[str, list[str]]  # per child table, its columns held once per parent
    chained: dict[str, str]  # per child table, the column whose previous value is each row's order value


def prepare(frames: Mapping[str, pd.DataFrame], relations: Relations, schemas: Mapping[str, Schema],
            length_quantile: float) -> Prepared:
    kept, prepared = {}, Prepared({}, {}, {}, {}, {}, {}, {}, {}, {})
    for name in relations.parents_first():
        rows = conform(frames[name], schemas[name]).reset_index(drop=True)
        fk = parent_key(relations, name)
        if fk is not None:
            rows = _sequences(name, rows, fk, kept[fk.parent], relations, schemas[name], length_quantile, prepared)
        kept[name] = rows
    for name in reversed(relations.parents_first()):  # a child's chaining decides whether its parent holds a span
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
    prepared.hoisted[name] = _constant_categories(rows, prepared.parent_rows[name],
                                                  attribute_columns(relations, schema, name))
    return rows


def _constant_categories(rows: pd.DataFrame, parent_rows: np.ndarray, columns: list[Column]) -> list[str]:
    """Categories that never change within at least HOIST_SHARE of the parents with several rows."""
    several = pd.Series(parent_rows).map(pd.Series(parent_rows).value_counts()).to_numpy() > 1
    if len(np.unique(parent_rows[several])) < MIN_HOIST_PARENTS:
        return []
    found = []
    for column in columns:
        if column.kind in ("categorical", "boolean"):
            changes = rows[column.name][several].groupby(parent_rows[several]).nunique(dropna=False)
            if (changes == 1).mean() >= HOIST_SHARE:
                found.append(column.name)
    return found


def _frame(name: str, kept: dict, relations: Relations, schemas: Mapping[str, Schema], prepared: Prepared) -> None:
    """The table's modelled attributes, its children's counts, starts and hoisted columns, and its own gaps."""
    columns = [c for c in attribute_columns(relations, schemas[name], name)
               if c.name not in prepared.hoisted.get(name, [])]
    frame = kept[name][[c.name for c in columns]].copy()
    attributes = len(columns)
    for child in relations.children(name):
        columns += _child_columns(frame, child, kept[child], schemas[child], prepared)
    order = prepared.orders.get(name)
    if order is not None:
        frame[GAP] = order.gaps(kept[name][order.column.name], prepared.positions[name])
        columns.append(order.gap_column(frame[GAP].to_numpy()))
    clashes = [c.name for c in columns[attributes:] if c.name in kept[name].columns]
    if clashes:
        raise ModelError(f"table {name!r}: columns {clashes} clash with the names the linked model adds")
    starts = {start_name(child) for child in relations.children(name)}
    if order is not None:  # a child's own dates after its event time; its children's starts after it too
        references = [(order.column, kept[name][order.column.name])]
        candidates = starts | {c.name for c in columns[:attributes]}
    else:  # a person's first visit after, say, the diagnosis date
        references = [(c, kept[name][c.name]) for c in columns[:attributes] if c.kind == "datetime"]
        candidates = starts
    prepared.offsets[name] = _distances(frame, columns, candidates, references)
    chained = _chained(frame, prepared.offsets[name], order, prepared.positions.get(name)) if order else None
    if chained is not None:  # the gap is the previous row's distance: not a column to learn
        prepared.chained[name] = chained
        del frame[GAP]
        columns = [c for c in columns if c.name != GAP]
    prepared.frames[name], prepared.columns[name] = frame, columns


def _chained(frame: pd.DataFrame, offsets: list[Offset], order: OrderGaps, positions: np.ndarray) -> str | None:
    """A column held as a distance after the order column whose every value is the next row's order value (an
    episode that starts where the previous one stopped)."""
    later = positions > 0
    gaps = frame[GAP].to_numpy(float)[later] * order.unit
    for offset in offsets:
        if offset.column.name in frame.columns and offset.reference == order.column.name and later.any():
            previous = np.roll(frame[offset.column.name].to_numpy(float), 1)[later] * offset.unit
            if np.allclose(gaps, previous, rtol=0, atol=1e-9 * max(order.unit, 1)):
                return offset.column.name
    return None


def _child_columns(frame: pd.DataFrame, child: str, rows: pd.DataFrame, schema: Schema,
                   prepared: Prepared) -> list[Column]:
    """Adds to `frame` the number of `child` rows of each row and, from the first of them, the order value (if
    ordered) and the hoisted columns."""
    frame[count_name(child)] = np.bincount(prepared.parent_rows[child], minlength=len(frame))
    added = [Column(count_name(child), "numerical", "int64", reason=f"rows of {child} per row", discrete=True,
                    decimals=0)]
    order = prepared.orders.get(child)
    first = prepared.positions[child] == 0
    taken = [(dataclasses.replace(schema[c], name=hoisted_name(child, c)), c) for c in prepared.hoisted[child]]
    if order is not None:
        start = dataclasses.replace(order.column, name=start_name(child),
                                    reason=f"order value of the first row of {child}")
        taken.insert(0, (start, order.column.name))
    for column, source in taken:
        firsts = pd.Series(rows[source][first].to_numpy(), index=prepared.parent_rows[child][first])
        frame[column.name] = firsts.reindex(range(len(frame))).to_numpy()
        added.append(column)
    if order is not None and child not in prepared.chained:
        gaps = order.gaps(rows[order.column.name], prepared.positions[child])
        spans = np.bincount(prepared.parent_rows[child], np.nan_to_num(gaps), minlength=len(frame))
        frame[span_name(child)] = np.where(frame[count_name(child)] > 0, spans, np.nan)
        added.append(order.span_column(frame[span_name(child)].to_numpy(), child))
    return added


def _distances(frame: pd.DataFrame, columns: list[Column], candidates: set[str],
               references: list[tuple[Column, pd.Series]]) -> list[Offset]:
    """Candidate columns never before a reference become distances after the nearest such reference (by median
    distance), in place in `frame` and `columns`."""
    found = []
    for i, column in enumerate(columns):
        if column.name not in candidates:
            continue
        offsets = [o for ref, values in references if (o := find_offset(column, frame[column.name], ref, values))]
        if offsets:
            values = dict((ref.name, v) for ref, v in references)
            offset = min(offsets, key=lambda o: np.nanmedian(o.encode(frame[column.name], values[o.reference])))
            frame[column.name] = offset.encode(frame[column.name], values[offset.reference])
            columns[i] = offset.modelled()
            found.append(offset)
    return found
