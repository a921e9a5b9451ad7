"""A flat table with several rows per person (R's `survival::cgd`: `id` repeats, the patient's columns stay the
same within an `id`, the event columns `tstart, enum, tstop, status` vary), split into a person table and an
events table, so the person is the privacy unit rather than the row.

The person key is a column whose name says key (`pii.is_key_name`, the judgement schema inference uses to call
it an identifier) and whose values repeat. The person table holds the key and every column constant within each
key value, as checked on the rows; the events table holds the rest, the key as its foreign key, a surrogate
event key, and the order column `order.choose_order` picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tabsynth import pii
from tabsynth.errors import SchemaError
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec
from tabsynth.table.order import choose_order, sortable

PERSONS, EVENTS = "persons", "events"


@dataclass(frozen=True)
class RepeatedKey:
    """A key-named column that repeats, and which columns stay constant within each of its values."""

    column: str
    rows: int
    persons: int
    constant: tuple[str, ...]
    varying: tuple[str, ...]

    def describe(self) -> str:
        same = ", ".join(self.constant) or "no other column"
        return (f"{self.column} repeats: {self.rows:,} rows for {self.persons:,} values, several rows per person; "
                f"constant within each {self.column}: {same}")


def find_repeated_keys(frame: pd.DataFrame) -> list[RepeatedKey]:
    """Every key-named column whose values repeat (present in every row), the likeliest person key first: the
    one with the most columns constant within it, then the most values."""
    found = [repeated_key(frame, str(name)) for name in frame.columns
             if pii.is_key_name(str(name)) and frame[name].notna().all() and not frame[name].is_unique]
    return sorted(found, key=lambda r: (-len(r.constant), -r.persons))


def repeated_key(frame: pd.DataFrame, key: str) -> RepeatedKey:
    """How `key` groups the rows: the columns constant within each key value (missing counts as a value)."""
    others = [str(c) for c in frame.columns if c != key]
    distinct = frame.groupby(key, sort=False, dropna=False)[others].nunique(dropna=False) if others else None
    constant = tuple(c for c in others if distinct is not None and (distinct[c] <= 1).all())
    varying = tuple(c for c in others if c not in constant)
    return RepeatedKey(key, len(frame), int(frame[key].nunique()), constant, varying)


def split_repeated_key(frame: pd.DataFrame, key: str, persons: str = PERSONS, events: str = EVENTS, *,
                       private: bool = False) -> tuple[Relations, dict[str, pd.DataFrame]]:
    """The person table (`key` and the columns constant within it) and the events table (the rest, `key` as the
    foreign key, a surrogate event key, rows ordered by person then order column). `private` (a DP release):
    nothing decided from the rows: every other column is an event's, the events kept in the input's order."""
    _check_key(frame, key)
    constant = [] if private else _constant_columns(frame, key)
    person_rows = frame[[key, *constant]].drop_duplicates(key).sort_values(key, kind="stable")
    event_rows = frame[[key, *[c for c in frame.columns if c != key and c not in constant]]]
    order = None if private else choose_order(event_rows, skip={key}).column
    event_rows = _in_order(event_rows, key, order)
    event_key = _free_name("event_id", event_rows.columns)
    event_rows.insert(0, event_key, range(1, len(event_rows) + 1))
    relations = Relations({
        persons: TableSpec(persons, primary_key=key),
        events: TableSpec(events, primary_key=event_key, foreign_keys=(ForeignKey(key, persons, key),),
                          order_by=order),
    })
    return relations.check(), {persons: person_rows.reset_index(drop=True), events: event_rows}


def _in_order(rows: pd.DataFrame, key: str, order: str | None) -> pd.DataFrame:
    """By person, then by the order column (text dates by date); ties keep the rows' order."""
    rows = rows.reset_index(drop=True)
    if order is None:
        return rows.sort_values(key, kind="stable").reset_index(drop=True)
    position = pd.DataFrame({"key": rows[key].to_numpy(), "order": sortable(order, rows[order]).to_numpy()})
    return rows.take(position.sort_values(["key", "order"], kind="stable").index).reset_index(drop=True)


def _constant_columns(frame: pd.DataFrame, key: str) -> list[str]:
    """The columns constant within each key value; an error when no column varies (no events to split off)."""
    shape = repeated_key(frame, key)
    if not shape.varying:
        raise SchemaError(f"{key}: every other column is constant within each {key}; the rows repeat whole "
                          f"persons and there are no events to split off (drop the duplicate rows instead)")
    return list(shape.constant)


def _check_key(frame: pd.DataFrame, key: str) -> None:
    if key not in frame.columns:
        raise SchemaError(f"--split-by {key!r}: no such column (columns: {', '.join(map(str, frame.columns))})")
    missing = int(frame[key].isna().sum())
    if missing:
        raise SchemaError(f"{key}: {missing:,} rows have no {key}; every row needs its person to split by it")


def _free_name(name: str, taken) -> str:
    candidate, n = name, 1
    while candidate in set(map(str, taken)):
        n += 1
        candidate = f"{name}_{n}"
    return candidate
