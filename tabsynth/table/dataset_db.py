"""A whole database schema as a dataset: the keys its catalogue declares, each table's rows, and each child's
order column inferred (a catalogue declares none); the rows checked against the keys (`check_rows`)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from tabsynth.errors import SchemaError
from tabsynth.io.catalogue import read_catalogue
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec, check_rows, read_one
from tabsynth.table.order import choose_order


def read_database(url: str, schema: str | None = None) -> tuple[Relations, dict[str, pd.DataFrame]]:
    """Every table of a database schema, with the primary and foreign keys its catalogue declares (a catalogue
    declares no order: each child's is inferred from its rows), the rows checked against the keys."""
    relations = relations_from_catalogue(url, schema)
    frames = {name: read_one(t) for name, t in relations.tables.items()}
    relations = with_inferred_orders(relations, frames)
    check_rows(relations, frames)
    return relations, frames


def relations_from_catalogue(url: str, schema: str | None = None) -> Relations:
    """The keys a database declares, as `Relations` (checked: one person table, no cycle). Keys of several
    columns are refused: tabsynth links tables by one key column."""
    catalogue = read_catalogue(url, schema)
    problems = [_several_columns(entry) for entry in catalogue]
    problems = [p for p in problems if p]
    if problems:
        raise SchemaError(*problems)
    tables = {}
    for entry in catalogue:
        keys = tuple(ForeignKey(fk["columns"][0], fk["parent"], fk["parent_columns"][0])
                     for fk in entry["foreign_keys"])
        primary = entry["primary_key"][0] if entry["primary_key"] else None
        tables[entry["name"]] = TableSpec(entry["name"], path=f"{url}#{entry['qualified']}", primary_key=primary,
                                          foreign_keys=keys)
    return Relations(tables).check()


def _several_columns(entry: dict) -> str | None:
    if len(entry["primary_key"]) > 1:
        return (f"{entry['qualified']}: its primary key has several columns ({', '.join(entry['primary_key'])}); "
                f"tabsynth links tables by one key column")
    wide = [fk for fk in entry["foreign_keys"] if len(fk["columns"]) > 1]
    if wide:
        return (f"{entry['qualified']}: a foreign key has several columns ({', '.join(wide[0]['columns'])}); "
                f"tabsynth links tables by one key column")
    return None


def with_inferred_orders(relations: Relations, frames: dict[str, pd.DataFrame]) -> Relations:
    """Each child table without an order column gets the most time-like one (`order.choose_order`)."""
    tables = {}
    for name, t in relations.tables.items():
        if t.foreign_keys and t.order_by is None:
            keys = {t.primary_key, *(fk.column for fk in t.foreign_keys)}
            t = replace(t, order_by=choose_order(frames[name], skip=keys).column)
        tables[name] = t
    return Relations(tables)
