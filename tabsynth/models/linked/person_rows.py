"""Linked tables as one row per person, and back: the layout of a per-person differentially private release.

A person (a root row and every row hanging from it) becomes ONE row of a wide person table: the root's
attributes, then for each child table the person's number of rows (`<child>.__events`, capped at the table's
`max_events` L) and the columns of their first L rows in order, position by position (`<child>.<column>#<j>`).
Row-level DP on that table is per-person DP: adding or removing a person adds or removes one row. Rows beyond the
first L of a person are not modelled (L is public: declared, never read from the rows).

Unfolding gives back the root table and each child table with new keys (1, 2, ...; read from no row), every
foreign key pointing at its synthetic person, and each person's rows sorted by the order column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.table.dataset import Relations
from tabsynth.table.schema import Column, Facts, Schema
from tabsynth.table.values import as_dtype

DEFAULT_MAX_EVENTS = 10  # public: the rows per person kept when the dataset YAML declares no max_events


def events_name(child: str) -> str:
    return f"{child}.__events"


def position_name(child: str, column: str, position: int) -> str:
    return f"{child}.{column}#{position}"


def check_person_layout(relations: Relations) -> dict[str, int]:
    """The trees a person row can hold (the root with a primary key, each other table hanging from it by one
    foreign key); the kept rows per person of each child table. One InputError listing every problem."""
    root = relations.root()
    problems = [] if relations.tables[root].primary_key else [f"{root}: the person table needs a primary_key"]
    caps = {}
    for name in relations.children(root):
        spec = relations.tables[name]
        if len(spec.foreign_keys) != 1:
            problems.append(f"{name}: references {len(spec.foreign_keys)} tables; per-person DP needs each table "
                            "to hang from the person table by one foreign key")
        caps[name] = spec.max_events or DEFAULT_MAX_EVENTS
    deeper = [n for n in relations.names if n != root and n not in caps]
    problems += [f"{name}: hangs from {relations.tables[name].foreign_keys[0].parent}, not from the person table "
                 f"{root}; per-person DP supports one level of child tables" for name in deeper]
    if problems:
        raise InputError(*problems)
    return caps


def event_columns(relations: Relations, schema: Schema, name: str) -> list[Column]:
    """A child table's modelled columns, less its keys (the order column stays: it is generated per position)."""
    spec = relations.tables[name]
    keys = {spec.primary_key, *(fk.column for fk in spec.foreign_keys)}
    return [c for c in schema.modelled() if c.name not in keys]


def person_columns(relations: Relations, schema: Schema) -> list[Column]:
    root = relations.root()
    return [c for c in schema.modelled() if c.name != relations.tables[root].primary_key]


def wide_schema(relations: Relations, schemas: Mapping[str, Schema], caps: Mapping[str, int]) -> Schema:
    """The person table's schema from the tables' (DP or declared) schemas: a position's column is its child
    column, nullable (a person with fewer rows has none there); the row count has the public bounds 0..L."""
    columns = list(person_columns(relations, schemas[relations.root()]))
    for child, cap in caps.items():
        columns.append(Column(events_name(child), "numerical", "int64", reason="public: rows per person, 0..L",
                              discrete=True, decimals=0, nullable=False, declared=Facts(min=0, max=cap)))
        for position in range(1, cap + 1):
            columns += [dataclasses.replace(c, name=position_name(child, c.name, position), nullable=True)
                        for c in event_columns(relations, schemas[child], child)]
    return Schema(tuple(columns))


def fold(frames: Mapping[str, pd.DataFrame], relations: Relations, schemas: Mapping[str, Schema],
         caps: Mapping[str, int]) -> pd.DataFrame:
    """One row per person (in the root table's order): attributes, row counts capped at L, the first L rows."""
    root = relations.root()
    persons = frames[root]
    keys = persons[relations.tables[root].primary_key].reset_index(drop=True)
    wide = {c.name: persons[c.name].reset_index(drop=True) for c in person_columns(relations, schemas[root])}
    for child, cap in caps.items():
        fk, order = relations.tables[child].foreign_keys[0].column, relations.tables[child].order_by
        rows = frames[child].sort_values([fk, order] if order else [fk], kind="stable")
        position = rows.groupby(fk, sort=False).cumcount().to_numpy()
        counts = rows[fk].value_counts()
        wide[events_name(child)] = keys.map(counts).fillna(0).clip(upper=cap).astype("int64")
        for j in range(cap):
            at = rows[position == j].set_index(fk)
            for column in event_columns(relations, schemas[child], child):
                wide[position_name(child, column.name, j + 1)] = keys.map(at[column.name])
    return pd.DataFrame(wide)


def unfold(wide: pd.DataFrame, relations: Relations, schemas: Mapping[str, Schema],
           caps: Mapping[str, int]) -> dict[str, pd.DataFrame]:
    """The root and child tables of the sampled person rows, each in its schema's column order."""
    root = relations.root()
    n = len(wide)
    root_keys = new_keys(schemas[root][relations.tables[root].primary_key], n)
    tables = {root: _table(schemas[root], {c.name: wide[c.name].reset_index(drop=True)
                                           for c in person_columns(relations, schemas[root])}, n)}
    tables[root][relations.tables[root].primary_key] = root_keys
    for child, cap in caps.items():
        tables[child] = _children(wide, relations, schemas[child], child, cap, root_keys)
    return tables


def _children(wide: pd.DataFrame, relations: Relations, schema: Schema, child: str, cap: int,
              root_keys: pd.Series) -> pd.DataFrame:
    spec = relations.tables[child]
    counts = pd.to_numeric(wide[events_name(child)], errors="coerce").fillna(0).round().clip(0, cap)
    counts = counts.to_numpy(np.int64)
    owners = np.repeat(np.arange(len(wide)), counts)
    positions = np.arange(len(owners)) - np.repeat(np.cumsum(counts) - counts, counts)
    values = {}
    for column in event_columns(relations, schema, child):
        grid = np.stack([wide[position_name(child, column.name, j + 1)].to_numpy(object) for j in range(cap)], 1) \
            if cap else np.empty((len(wide), 0), dtype=object)
        values[column.name] = pd.Series(grid[owners, positions] if len(owners) else [], dtype=object)
    frame = _table(schema, values, len(owners))
    fk = spec.foreign_keys[0]
    frame[fk.column] = root_keys.to_numpy()[owners] if len(owners) else root_keys.iloc[:0].to_numpy()
    if spec.order_by:  # the order rebuilt: each person's rows sorted by their generated order values
        frame = frame.assign(_owner=owners).sort_values(["_owner", spec.order_by], kind="stable")
        frame = frame.drop(columns="_owner").reset_index(drop=True)
    if spec.primary_key:
        frame[spec.primary_key] = new_keys(schema[spec.primary_key], len(frame))
    return frame


def _table(schema: Schema, values: Mapping[str, pd.Series], n: int) -> pd.DataFrame:
    """Every column of `schema` in its order: the generated ones in their dtype, identifiers new, PII empty (the
    release fills it with fakes)."""
    columns = {}
    for column in schema.columns:
        if column.name in values:
            columns[column.name] = as_dtype(pd.Series(values[column.name]).infer_objects(), column.dtype)
        elif column.kind == "id":
            columns[column.name] = new_keys(column, n)
        else:
            columns[column.name] = pd.Series([None] * n, dtype=object)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def new_keys(column: Column, n: int) -> pd.Series:
    """1..n in the key's dtype (numbers), else as text: read from nothing private (a key may equal some real
    key's value; it links to nothing real)."""
    numbers = pd.Series(np.arange(1, n + 1), name=column.name)
    if column.dtype.startswith(("int", "uint", "Int", "UInt", "float", "Float")):
        return as_dtype(numbers, column.dtype)
    return numbers.astype(str).astype(object)
