"""Read a dataset's rows: every table of a `Relations` from its file, Parquet folder or database table, or a whole
database schema with the keys its catalogue declares. The rows are checked against the keys before they are
returned (`check_rows`: one SchemaError naming every broken key).

A table's `path` is a CSV file, a Parquet file or folder, or a database URL; the table read from a URL is the
one after `#` (`postgresql://me@db/clinic#public.visits`), else the table of the dataset's name.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from tabsynth.errors import InputError, SchemaError
from tabsynth.io import sql
from tabsynth.io.catalogue import read_catalogue
from tabsynth.io.files import read_table
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec, check_rows
from tabsynth.table.order import choose_order


def read_dataset(relations: Relations) -> dict[str, pd.DataFrame]:
    """`{table name: rows}` for every table, with every key checked."""
    missing = [name for name, t in relations.tables.items() if not t.path]
    if missing:
        raise SchemaError(*[f"{name}: no path to read the table from" for name in missing])
    frames = {name: read_one(t) for name, t in relations.tables.items()}
    check_rows(relations, frames)
    return frames


def read_one(table: TableSpec) -> pd.DataFrame:
    """One table's rows from its file or database table; a failure (a missing file, an unknown table) is one
    InputError line naming the table."""
    try:
        if not sql.is_url(table.path):
            return read_table(table.path)
        url, _, name = table.path.partition("#")
        return sql.read_source(sql.open_source(url, table=name or table.name))
    except InputError as exc:
        raise InputError(*(f"table {table.name}: {line}" for line in exc.problems)) from None


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
