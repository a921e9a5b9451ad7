"""The --out-table sink: a database table with the source's column types, written in one transaction."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from tabsynth.errors import InputError
from tabsynth.io.sql import DEFAULT_SCHEMAS, SqlSource, connected, parse_url, public_url, qualified, split_name

INSERT_BATCH = 50_000
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class SqlSink:
    """Where --out-table writes: a table that must not exist yet, unless `replace`."""

    url: URL
    table: str
    schema: str | None = None
    replace: bool = False

    @property
    def name(self) -> str:
        return qualified(self.schema, self.table)


def parse_sink(out_table: str | None, out_url: str | None, source, replace_table: bool) -> SqlSink | None:
    """--out-table [--out-url] [--replace]: the database is the source's unless --out-url names another."""
    if not out_table:
        if out_url or replace_table:
            raise InputError("--out-url and --replace go with --out-table SCHEMA.TABLE")
        return None
    if out_url:
        url = parse_url(out_url)
    elif isinstance(source, SqlSource):
        url = source.url
    else:
        raise InputError("--out-table needs a database: give --out-url (the source is a file)")
    schema, table = split_name(out_table, "--out-table")
    if schema and url.get_backend_name() == "sqlite":
        raise InputError(f"--out-table {out_table!r}: SQLite has no schemas; give a plain table name")
    return SqlSink(url, table, schema, replace_table)


def check_sink(sink: SqlSink | None, source) -> SqlSink | None:
    """Before any work: the database answers, the table is free (or --replace), and it is not the source table."""
    if sink is None:
        return None
    if new_sqlite_file(sink.url):
        return sink
    with connected(sink.url, "connecting to") as connection:
        inspector = sa.inspect(connection)
        sink = replace(sink, schema=sink.schema or inspector.default_schema_name)
        exists = inspector.has_table(sink.table, schema=sink.schema)
    if isinstance(source, SqlSource) and source.table and _may_be_same_table(source, sink):
        raise InputError(f"--out-table {sink.name} is the source table, or may be (same database and table name, "
                         "ignoring case); write the synthetic rows to another table")
    if exists and not sink.replace:
        raise InputError(f"table {sink.name} already exists in {public_url(sink.url)} (use --replace to replace it)")
    return sink


def _may_be_same_table(source: SqlSource, sink: SqlSink) -> bool:
    """Cautious: the same database name and table name, ignoring case and how the server is spelt (a host has
    many names: localhost, 127.0.0.1, a DNS alias), so a `--replace` can never drop the private source."""
    def place(url: URL, schema: str | None, table: str) -> tuple:
        backend, database = url.get_backend_name(), url.database or ""
        if backend == "sqlite" and database not in ("", ":memory:"):
            database = str(Path(database).resolve())
        schema = schema or DEFAULT_SCHEMAS.get(backend, "")
        return backend, database.lower(), schema.lower(), table.lower()

    return place(source.url, source.schema, source.table) == place(sink.url, sink.schema, sink.table)


def new_sqlite_file(url: URL) -> bool:
    """A SQLite file that does not exist yet is created when the table is written (its folder must exist)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or database in (None, "", ":memory:") or Path(database).exists():
        return False
    if not Path(database).resolve().parent.is_dir():
        raise InputError(f"the folder for the SQLite database {database} does not exist")
    return True


def output_table(sink: SqlSink, frame: pd.DataFrame, datetime_formats: dict[str, str], source) -> sa.Table:
    """The table to create: a column keeps the source table's type where the source has a column of its name
    (widened to TEXT if fake values outgrow a VARCHAR(n)), else gets a type mapped from its pandas dtype."""
    reflected = source.column_types if isinstance(source, SqlSource) else {}
    same_backend = isinstance(source, SqlSource) and source.url.get_backend_name() == sink.url.get_backend_name()
    columns = [sa.Column(name, _sink_type(frame[name], reflected.get(name), same_backend,
                                          datetime_formats.get(name)))
               for name in frame.columns]
    return sa.Table(sink.table, sa.MetaData(), *columns, schema=sink.schema)


def _sink_type(values: pd.Series, reflected, same_backend: bool, datetime_format: str | None):
    if reflected is not None and not same_backend:
        try:
            reflected = reflected.as_generic()
        except NotImplementedError:
            reflected = None
    if reflected is None:
        return column_type(values, datetime_format)
    if isinstance(reflected, sa.String) and reflected.length:
        longest = values.dropna().astype(str).str.len().max()
        if pd.notna(longest) and longest > reflected.length:
            return sa.Text()
    return reflected


def column_type(values: pd.Series, datetime_format: str | None):
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(dtype):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(dtype):
        return sa.Double()
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if datetime_format and not re.search(r"%[HIMSfpXcT]", datetime_format):
            return sa.Date()  # dates written as text without a time of day
        return sa.DateTime(timezone=isinstance(dtype, pd.DatetimeTZDtype))
    return sa.Text()


def sink_record(sink: SqlSink, table: sa.Table, rows: int) -> dict:
    """What the manifest says about the table: where, how many rows, and each column's database type."""
    dialect = sink.url.get_dialect()()
    return {"url": public_url(sink.url), "table": sink.name, "rows": rows, "replace": sink.replace,
            "columns": {c.name: c.type.compile(dialect=dialect) for c in table.columns}}


@contextmanager
def table_transaction(sink: SqlSink, table: sa.Table, frame: pd.DataFrame) -> Iterator[None]:
    """Create the table (with --replace: drop and create it) and insert every row in one transaction, which
    commits when the with-block ends without an error. Readers see the old table, or none, until the commit, then
    the complete new one (PostgreSQL and SQLite run DDL inside transactions)."""
    with connected(sink.url, "writing to") as connection, connection.begin():
        if sink.schema and not sa.inspect(connection).has_schema(sink.schema):
            connection.execute(sa.schema.CreateSchema(sink.schema))
        if sink.replace:
            table.drop(connection, checkfirst=True)
        table.create(connection)
        insert_rows(connection, table, frame)
        yield


def insert_rows(connection: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """PostgreSQL through psycopg2: COPY (some 50 times faster than INSERT). Elsewhere batched executemany, which
    SQLAlchemy sends as multi-row INSERT ... VALUES statements."""
    columns = [_db_values(frame[c.name], c.type) for c in table.columns]
    names = [c.name for c in table.columns]
    copy = connection.dialect.driver == "psycopg2"
    for start in range(0, len(frame), INSERT_BATCH):
        batch = zip(*(values[start:start + INSERT_BATCH] for values in columns), strict=True)
        if copy:
            _copy(connection, table, batch)
        else:
            connection.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in batch])


def _copy(connection: Connection, table: sa.Table, rows) -> None:
    """COPY ... FROM STDIN in PostgreSQL's text format: NULL is an unescaped \\N, so no string can be taken for it."""
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c.name) for c in table.columns)
    text = "".join("\t".join(map(_copy_field, row)) + "\n" for row in rows)
    cursor = connection.connection.dbapi_connection.cursor()
    cursor.copy_expert(f"COPY {preparer.format_table(table)} ({names}) FROM STDIN", io.StringIO(text))


def _copy_field(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.date):  # datetimes too: ISO 8601, with the offset where there is one
        return value.isoformat()
    return (repr(value) if isinstance(value, float) else str(value)).translate(COPY_ESCAPES)


def _db_values(values: pd.Series, type_) -> list:
    """The column as the Python values the driver expects for `type_`, None where missing."""
    if isinstance(type_, sa.Boolean):
        values = values.astype("boolean")
    elif isinstance(type_, sa.Integer):
        values = pd.to_numeric(values).round().astype("Int64")
    elif isinstance(type_, sa.Numeric):
        values = pd.to_numeric(values).astype(float)
    elif isinstance(type_, (sa.DateTime, sa.Date)):
        return _db_datetimes(values, type_)
    elif isinstance(type_, sa.String):
        values = values.map(lambda v: v if pd.isna(v) else str(v))
    return values.astype(object).where(values.notna(), None).tolist()


def _db_datetimes(values: pd.Series, type_) -> list:
    stamps = pd.to_datetime(values)
    aware = stamps.dt.tz is not None
    if isinstance(type_, sa.DateTime) and type_.timezone:
        stamps = stamps if aware else stamps.dt.tz_localize("UTC")
    elif aware:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    plain = stamps.dt.date if isinstance(type_, sa.Date) else stamps
    return [None if pd.isna(v) else (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for v in plain]
