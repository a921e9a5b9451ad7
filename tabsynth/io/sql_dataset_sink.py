"""--out-table for linked tables: every table created with its primary key and foreign-key constraints, and
filled parents first, in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from tabsynth.errors import InputError
from tabsynth.io.sql import connected, parse_url, public_url, qualified
from tabsynth.io.sql_sink import column_type, insert_rows, new_sqlite_file


@dataclass(frozen=True)
class TableLinks:
    """One table to write, with its keys: `foreign_keys` are (column, parent table, parent column)."""

    name: str
    frame: pd.DataFrame
    primary_key: str | None = None
    foreign_keys: tuple[tuple[str, str, str], ...] = ()
    datetime_formats: dict | None = None


@dataclass(frozen=True)
class DatasetSink:
    url: sa.engine.URL
    prefix: str = ""  # each table is written as prefix + its name
    schema: str | None = None
    replace: bool = False

    def name(self, table: str) -> str:
        return qualified(self.schema, self.prefix + table)


def parse_dataset_sink(out_table: str | None, out_url: str | None, replace: bool) -> DatasetSink | None:
    """--out-table PREFIX (`synth_`, or `synth.` for PostgreSQL's schema synth) and --out-url, the database."""
    if not out_table and not out_url:
        if replace:
            raise InputError("--replace goes with --out-table and --out-url")
        return None
    if not (out_table and out_url):
        raise InputError("a dataset's --out-table PREFIX needs --out-url, the database to write the tables to")
    url = parse_url(out_url)
    schema, _, prefix = out_table.rpartition(".")
    if schema and url.get_backend_name() == "sqlite":
        raise InputError(f"--out-table {out_table!r}: SQLite has no schemas; give a table-name prefix such as synth_")
    return DatasetSink(url, prefix, schema or None, replace)


def check_dataset_sink(sink: DatasetSink | None, tables: list[str]) -> None:
    """Before any work: the database answers and no table is taken (unless --replace)."""
    if sink is None or new_sqlite_file(sink.url):
        return
    with connected(sink.url, "connecting to") as connection:
        inspector = sa.inspect(connection)
        taken = [sink.name(t) for t in tables if inspector.has_table(sink.prefix + t, schema=sink.schema)]
    if taken and not sink.replace:
        raise InputError(f"table {', '.join(taken)} already exists in {public_url(sink.url)} "
                         "(use --replace to replace them)")


@contextmanager
def dataset_transaction(sink: DatasetSink, tables: list[TableLinks]) -> Iterator[dict]:
    """Create every table (parents first, as `tables` is ordered) with its keys, insert the rows, and commit when
    the with-block ends without an error; yields what the manifest records."""
    metadata = sa.MetaData()
    created = [_table(sink, t, metadata) for t in tables]
    with connected(sink.url, "writing to") as connection, connection.begin():
        if sink.schema and not sa.inspect(connection).has_schema(sink.schema):
            connection.execute(sa.schema.CreateSchema(sink.schema))
        if sink.replace:
            for table in reversed(created):
                table.drop(connection, checkfirst=True)
        for table, spec in zip(created, tables, strict=True):
            table.create(connection)
            insert_rows(connection, table, spec.frame)
        yield {"url": public_url(sink.url), "tables": {t.name: sink.name(t.name) for t in tables},
               "rows": {t.name: len(t.frame) for t in tables}, "replace": sink.replace}


def _table(sink: DatasetSink, spec: TableLinks, metadata: sa.MetaData) -> sa.Table:
    formats = spec.datetime_formats or {}
    columns = [sa.Column(c, column_type(spec.frame[c], formats.get(c)), primary_key=c == spec.primary_key)
               for c in spec.frame.columns]
    links = [sa.ForeignKeyConstraint([column], [f"{sink.name(parent)}.{parent_column}"])
             for column, parent, parent_column in spec.foreign_keys]
    return sa.Table(sink.prefix + spec.name, metadata, *columns, *links, schema=sink.schema)
