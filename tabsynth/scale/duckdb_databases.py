"""DuckDB reading a PostgreSQL or SQLite table in place, through its scanner extensions.

The extensions ship as wheels (`duckdb-extension-postgres-scanner`, `duckdb-extension-sqlite-scanner`), loaded
from their files: DuckDB never downloads anything. The database is attached read-only; count queries then
scan the table where it lives, as they scan a Parquet file.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from tabsynth.errors import InputError, first_line
from tabsynth.io.sql import DEFAULT_SCHEMAS, SqlSource, public_url
from tabsynth.scale import sql

ALIAS = "tabsynth_source_db"
EXTENSIONS = {"postgresql": ("postgres_scanner", "postgres"), "sqlite": ("sqlite_scanner", "sqlite")}


def attach(connection: duckdb.DuckDBPyConnection, source: SqlSource) -> str:
    """Attach `source`'s database to `connection`; a FROM-able SQL text for its table or query."""
    backend = source.url.get_backend_name()
    if backend not in EXTENSIONS:
        raise InputError(f"--engine duckdb reads files, PostgreSQL and SQLite; not {backend} "
                         f"({public_url(source.url)})")
    extension, kind = EXTENSIONS[backend]
    _load(connection, extension)
    target = _libpq(source) if backend == "postgresql" else str(Path(source.url.database).resolve())
    try:
        connection.execute(f"ATTACH {sql.DUCKDB.string(target)} AS {ALIAS} (TYPE {kind}, READ_ONLY)")
    except duckdb.Error as exc:
        message = first_line(exc, source.url.password)  # libpq quotes the connection string, password included
        raise InputError(f"{public_url(source.url)}: DuckDB cannot attach the database: {message}") from None
    if source.query:
        if backend != "postgresql":
            raise InputError("--engine duckdb reads a SQLite table, not a query: give --table")
        return f"postgres_query({sql.DUCKDB.string(ALIAS)}, {sql.DUCKDB.string(source.query)})"
    schema = source.schema or DEFAULT_SCHEMAS[backend]
    return ".".join(sql.DUCKDB.quote(part) for part in (ALIAS, schema, source.table))


def _load(connection: duckdb.DuckDBPyConnection, extension: str) -> None:
    try:
        package = importlib.import_module(f"duckdb_extension_{extension}")
    except ImportError:
        raise InputError(f"--engine duckdb needs the package duckdb-extension-{extension.replace('_', '-')} "
                         "to read this database") from None
    found = sorted(Path(package.__file__).parent.glob(f"extensions/*/{extension}.duckdb_extension"))
    if not found:
        raise InputError(f"the package duckdb-extension-{extension} holds no extension file for this DuckDB")
    connection.execute(f"LOAD {sql.DUCKDB.string(str(found[-1]))}")


def _libpq(source: SqlSource) -> str:
    """The libpq connection string of a PostgreSQL URL (values quoted as libpq reads them); the URL's options
    (sslmode, host, ...) pass through, as psycopg2 passes them."""
    url = source.url
    parts = {key: value[-1] if isinstance(value, tuple) else value for key, value in url.query.items()}
    parts |= {key: value for key, value in {"host": url.host, "port": url.port, "dbname": url.database,
                                            "user": url.username, "password": url.password}.items() if value}
    return " ".join(f"{key}={_libpq_value(value)}" for key, value in parts.items())


def _libpq_value(value) -> str:
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"
