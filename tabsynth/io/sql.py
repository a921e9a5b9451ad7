"""Database sources and sinks through SQLAlchemy, and the place where a DATA argument becomes a file or a table.

DATA is a file path (CSV, Parquet file, Parquet folder) or a database URL (`sqlite:///path.db`,
`postgresql://user@host:port/db`) with `--table [schema.]name` or `--query "SELECT ..."`. A read never changes the
database: its transaction is read-only and rolled back.

Column types map back: each column's pandas dtype follows the Python values the driver returns, so integers stay
integers (`Int64` where there are NULLs), booleans stay booleans (`boolean` with NULLs), dates and timestamps become
datetime64 (time-zone-aware ones in UTC), NUMERIC and floating point become float64, text stays text.

The rows are put in a canonical order (by row hash), so a seeded release replays exactly whatever order the
database returns them in, and the input's SHA-256 (`frame_sha256`) does not depend on that order either.
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import hashlib
import importlib.util
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tabsynth.errors import InputError, first_line
from tabsynth.io.files import check_input_path, file_sha256, read_table
from tabsynth.io.frames import FrameSource, check_frame, read_frame

URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
PASSWORD_IN_URL = re.compile(r"(://[^:/@]*):[^@/]*@")
CONNECT_TIMEOUT_S = 10
LOOPBACK, LOOPBACK_NAMES = "127.0.0.1", ("localhost", "127.0.0.1", "::1", "[::1]")
DEFAULT_SCHEMAS = {"postgresql": "public", "sqlite": "main"}  # where a table without a schema lives
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}


@dataclass(frozen=True)
class SqlSource:
    """A table or a query in a database; `check_source` fills in the schema and the table's column types."""

    url: URL
    table: str | None = None
    schema: str | None = None
    query: str | None = None
    column_types: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return qualified(self.schema, self.table) if self.table else "query"

    def describe(self) -> str:
        return f"{public_url(self.url)} {'table ' + self.name if self.table else 'query'}"

    def ledger_identity(self) -> str:
        """Where the rows live, not what they hold: the same table stays one ledger source as its rows change."""
        if self.query:
            raise InputError("a differentially private fit on --query needs --source-id naming the data the query "
                             "reads (the ledger cannot tell which tables a query touches)")
        name = self.name.lower() if self.url.get_backend_name() == "sqlite" else self.name  # SQLite ignores case
        return f"{identity_url(self.url)}#{name}"


def qualified(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


def is_url(data) -> bool:
    return isinstance(data, str) and bool(URL_START.match(data))


def parse_source(data, table: str | None = None, query: str | None = None) -> Path | SqlSource | FrameSource:
    """DATA with --table/--query as given: a DataFrame, a file path, or a table or query in the database at a URL."""
    if isinstance(data, pd.DataFrame | FrameSource):
        if table or query:
            raise InputError("table and query read from a database, but the data is a DataFrame")
        return data if isinstance(data, FrameSource) else FrameSource(data)
    if not is_url(data):
        if table or query:
            raise InputError(f"--table and --query read from a database, but {data} is a file path "
                             "(give a URL such as sqlite:///file.db or postgresql://user@host/db)")
        return Path(data)
    url = parse_url(data)
    if not table and not query:
        raise InputError(f"{public_url(url)} is a database: name what to read with --table NAME "
                         "or --query \"SELECT ...\"")
    if table and query:
        raise InputError("give --table or --query, not both")
    schema, name = split_name(table, "--table") if table else (None, None)
    return SqlSource(url, table=name, schema=schema, query=query)


def open_source(data, table: str | None = None, query: str | None = None) -> Path | SqlSource | FrameSource:
    """DATA with --table/--query, parsed and checked (the file exists, or the database has the table)."""
    return check_source(parse_source(data, table, query))


def parse_url(text: str) -> URL:
    try:
        return sa.make_url(text)
    except (ArgumentError, ValueError):
        shown = PASSWORD_IN_URL.sub(r"\1@", text)
        raise InputError(f"{shown} is not a database URL "
                         "(dialect://user@host:port/database, e.g. postgresql://me@db.example.org/clinic)") from None


def split_name(name: str, flag: str) -> tuple[str | None, str]:
    schema, dot, table = name.strip().rpartition(".")
    if not table or (dot and not schema):
        raise InputError(f"{flag} {name!r}: expected NAME or SCHEMA.NAME")
    return schema or None, table


def public_url(url: URL) -> str:
    """The URL as it may appear in messages and manifests: no password, no query string (it may hold secrets)."""
    return URL.create(url.drivername, url.username, None, url.host, url.port, url.database).render_as_string()


def identity_url(url: URL) -> str:
    """One spelling per database: no driver, user, password or options (the budget is the table's, whoever
    reads it); the host from the URL or its `host` option, loopback names as one; default port; a SQLite file's
    absolute path."""
    backend = url.get_backend_name()
    database = url.database
    if backend == "sqlite" and database not in (None, "", ":memory:"):
        database = str(Path(database).resolve())
    host = (url.host or url.query.get("host") or "") or None
    host = LOOPBACK if host and host.lower() in LOOPBACK_NAMES else (host.lower() if host else None)
    port = url.port or _int_or_none(url.query.get("port")) or (DEFAULT_PORTS.get(backend) if host else None)
    return URL.create(backend, None, None, host, port, database).render_as_string()


def _int_or_none(value) -> int | None:
    text = value[0] if isinstance(value, tuple) else value
    return int(text) if isinstance(text, str) and text.isdigit() else None


def source_name(source: Path | SqlSource) -> str:
    """How messages name the source: the file name, or the table."""
    return source.name if isinstance(source, SqlSource | FrameSource) else Path(source).name


def check_source(source: Path | SqlSource) -> Path | SqlSource:
    """Before any work: the file exists, or the database answers and has the table (whose column types we keep)."""
    if isinstance(source, FrameSource):
        return check_frame(source)
    if not isinstance(source, SqlSource):
        return check_input_path(source)
    check_sqlite_file(source.url)
    with connected(source.url, "connecting to") as connection:
        if source.query:
            return source
        inspector = sa.inspect(connection)
        schema = source.schema or inspector.default_schema_name
        if not inspector.has_table(source.table, schema=schema):
            raise InputError(_unknown_table(inspector, source, schema))
        table = sa.Table(source.table, sa.MetaData(), schema=schema, autoload_with=connection)
    return replace(source, schema=schema, column_types={c.name: c.type for c in table.columns})


def check_sqlite_file(url: URL) -> None:
    """SQLite would quietly create an empty database for a mistyped path."""
    database = url.database
    if url.get_backend_name() == "sqlite" and database not in (None, "", ":memory:") and not Path(database).is_file():
        raise InputError(f"SQLite database file not found: {database}")


def _unknown_table(inspector, source: SqlSource, schema: str | None) -> str:
    try:
        names = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
    except SQLAlchemyError:  # e.g. the schema does not exist
        names = []
    close = difflib.get_close_matches(source.table, names, n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return f"table {qualified(schema, source.table)!r} not found in {public_url(source.url)}{hint}"


def read_source(source: Path | SqlSource) -> pd.DataFrame:
    """The table as a DataFrame, from a file or a database; every failure is one InputError line."""
    if isinstance(source, FrameSource):
        return read_frame(source)
    if not isinstance(source, SqlSource):
        return read_table(source)
    with connected(source.url, "reading from") as connection:
        _read_only(connection)
        names, rows = _fetch(connection, source)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{source.name}: duplicate column name(s) {', '.join(map(repr, duplicates))}; "
                         "rename them in the query (AS ...)")
    if not rows:
        raise InputError(f"{source.name}: the table has no rows")
    by_column = zip(*rows, strict=True)
    frame = pd.DataFrame({name: _column(name, values) for name, values in zip(names, by_column, strict=True)})
    return canonical_order(frame)


def _read_only(connection: Connection) -> None:
    backend = connection.dialect.name
    if backend == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif backend == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")


def _fetch(connection: Connection, source: SqlSource) -> tuple[list[str], list[tuple]]:
    if source.table:
        columns = [sa.Column(name, type_) for name, type_ in source.column_types.items()]
        result = connection.execute(sa.select(sa.Table(source.table, sa.MetaData(), *columns, schema=source.schema)))
        try:
            return list(result.keys()), result.fetchall()
        except ValueError as exc:  # SQLite: text in a DATE column that is not a date
            raise InputError(f"{source.name}: a value does not match its column's type: {exc}") from None
    # The driver's own cursor: SQLAlchemy would read ':name' and '%' in the user's SQL as parameters.
    cursor = connection.connection.dbapi_connection.cursor()
    try:  # as a subquery: one SELECT only, never a second statement that could change the database
        cursor.execute(f"SELECT * FROM (\n{source.query.strip().rstrip(';')}\n) AS tabsynth_query")
    except connection.dialect.loaded_dbapi.Error as exc:
        raise InputError(f"--query failed: {_first_line(exc, source.url)}") from None
    if cursor.description is None:
        raise InputError("--query returned no rows and no columns; it must be a SELECT")
    return [str(d[0]) for d in cursor.description], cursor.fetchall()


def _column(name: str, values: tuple):
    """A column's dtype from the Python values the driver returned (see the module docstring)."""
    kinds = {type(v) for v in values if v is not None}
    has_null = None in values
    if not kinds:
        return pd.Series(values, dtype=object)
    if kinds <= {bool, np.bool_}:
        return pd.array(values, dtype="boolean") if has_null else np.array(values, dtype=bool)
    if all(issubclass(k, int) and not issubclass(k, bool) for k in kinds):
        return pd.array(values, dtype="Int64") if has_null else np.array(values, dtype=np.int64)
    if all(issubclass(k, (int, float, decimal.Decimal)) for k in kinds):
        return np.array([np.nan if v is None else float(v) for v in values])
    if all(issubclass(k, dt.date) for k in kinds):
        return _datetimes(name, values, kinds)
    if all(issubclass(k, (str, uuid.UUID)) for k in kinds):
        return pd.Series([np.nan if v is None else str(v) for v in values], dtype=object)
    odd = sorted(k.__name__ for k in kinds if not issubclass(k, (str, int, float, decimal.Decimal, dt.date)))
    if odd:
        raise InputError(f"column {name!r} holds {', '.join(odd)} values, which tabsynth cannot model; "
                         "leave it out or cast it to text with --query")
    return pd.Series([np.nan if v is None else v for v in values], dtype=object)  # mixed, as SQLite allows


def _datetimes(name: str, values: tuple, kinds: set) -> pd.Series:
    aware = any(v.tzinfo is not None for v in values if isinstance(v, dt.datetime))
    try:
        return pd.Series(pd.to_datetime(list(values), utc=aware))
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InputError(f"column {name!r} has dates outside the years 1677-2262 that pandas can hold") from None


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def canonical_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[np.argsort(row_hashes(frame), kind="stable")].reset_index(drop=True)


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's content in any row order: column names and dtypes, then the sorted 64-bit row hashes of
    `pandas.util.hash_pandas_object` (stable for a given pandas version)."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}\0{dtype}\n".encode())
    digest.update(np.sort(row_hashes(frame)).astype("<u8").tobytes())
    return digest.hexdigest()


def input_info(source: Path | SqlSource, frame: pd.DataFrame, file_digest: str | None = None) -> dict:
    """What the manifest records about the input (its true row count is added by the caller, for non-DP fits);
    `file_digest`: the file's SHA-256 if already computed."""
    if isinstance(source, FrameSource):
        return {"path": source.describe(), "sha256": frame_sha256(frame), "sha256_of": "the rows, in any order "
                "(pandas.util.hash_pandas_object, sorted)", "columns": frame.shape[1], "format": "dataframe"}
    if not isinstance(source, SqlSource):
        path = Path(source)
        fmt = "parquet" if path.is_dir() else path.suffix.lstrip(".").lower()
        return {"path": str(path), "sha256": file_digest or file_sha256(path), "columns": frame.shape[1],
                "format": fmt}
    where = {"table": source.name} if source.table else {"query": source.query}
    return {"path": source.describe(), "url": public_url(source.url), **where, "sha256": frame_sha256(frame),
            "sha256_of": "the rows read, in any order (pandas.util.hash_pandas_object, sorted)",
            "columns": frame.shape[1], "format": "sql"}


@contextmanager
def connected(url: URL, doing: str) -> Iterator[Connection]:
    """A connection whose driver and server failures are one InputError line, never with the password."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    except SQLAlchemyError as exc:
        raise InputError(f"{doing} {public_url(url)} failed: {_first_line(exc, url)}") from None
    finally:
        engine.dispose()


def _engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        url = url.set(drivername="postgresql+psycopg2")  # SQLAlchemy 2.1 means psycopg 3 by a bare postgresql://
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if backend == "postgresql" else {}
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except NoSuchModuleError:
        raise InputError(f"unknown database type {url.drivername!r} in {public_url(url)}") from None
    except ImportError as exc:
        raise InputError(f"the database driver for {url.drivername!r} is not installed ({exc.name})") from None
    except (ArgumentError, ValueError) as exc:
        raise InputError(f"{public_url(url)}: {_first_line(exc, url)}") from None
    if backend == "sqlite":  # pysqlite commits DDL on its own; take transactions into our hands (SQLAlchemy docs)
        sa.event.listen(engine, "connect", _no_implicit_transactions)
        sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    return engine


def _no_implicit_transactions(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None


def _first_line(exc: Exception, url: URL) -> str:
    """The driver's message (SQLAlchemy keeps it as `orig`), the URL's password hidden; else the error's type."""
    message = getattr(exc, "orig", None) or exc
    return first_line(message, url.password) if str(message).strip() else type(exc).__name__

