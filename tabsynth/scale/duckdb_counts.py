"""Count queries answered by DuckDB over Parquet, CSV or a DuckDB table: the table is scanned, never loaded.

DuckDB runs with a memory limit and a spill folder, so a query larger than memory spills to disk instead of
failing; counts come back as small arrays (one row per cell of a marginal, never per row of the table).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from tabsynth.errors import InputError, first_line
from tabsynth.io.files import EXTRA_NA_VALUES, PARQUET_SUFFIXES, csv_delimiter, header_line, parquet_parts
from tabsynth.scale import sql
from tabsynth.table.codecs import Codec
from tabsynth.table.counts import BucketRequest, Clique, CliqueTally, bucket_counts
from tabsynth.table.schema import Column

BATCH_ROWS = 1_000_000  # rows of codes streamed to numpy at a time (a few MB per column)
MEMORY_LIMIT = "1GB"  # DuckDB's own buffers; with Python and Arrow on top the process stays near 1.5 GB
# pandas' default NA strings (read_csv na_values), plus tabsynth's extra ones: a CSV read here misses what
# tabsynth.io.files.read_table would
PANDAS_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
             "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
# The types pandas' read_csv gives a text column, tried in order: the first that every present value has wins
# (ISO dates, which pandas leaves as text, become dates, as DuckDB types them elsewhere; counts parse either). A
# value must look like the type too: DuckDB's casts are looser ('1.5', '0x10' and '1_000' cast to BIGINT, 'yes'
# to BOOLEAN). Numbers may end in spaces, as pandas allows; booleans may not.
TEXT_TYPES = (
    ("BIGINT", r"[+-]?[0-9]+ *"),
    ("DOUBLE", r"(?i)[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity) *"),
    ("BOOLEAN", r"True|TRUE|true|False|FALSE|false"),
    ("DATE", r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    ("TIMESTAMP", r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"),
)


class DuckDBSession:
    """An in-memory DuckDB connection that spills to a folder of its own: created private (0700) under the system
    temp dir for this session only, and removed by `close` (or, failing that, when the session is garbage
    collected or Python exits), since spilled pages hold private rows. Use it as a context manager."""

    def __init__(self, memory_limit: str = MEMORY_LIMIT, threads: int | None = None):
        self.spill_folder = Path(tempfile.mkdtemp(prefix="tabsynth-duckdb-"))  # mode 0700
        self._remove_folder = weakref.finalize(self, shutil.rmtree, self.spill_folder, ignore_errors=True)
        self.connection = duckdb.connect()
        for setting, value in (("memory_limit", sql.DUCKDB.string(memory_limit)),
                               ("temp_directory", sql.DUCKDB.string(str(self.spill_folder))),
                               ("threads", int(threads or os.cpu_count() or 1)),
                               ("preserve_insertion_order", "false"),  # lets scans stream with less buffering
                               ("TimeZone", "'UTC'")):  # zoned times read as UTC; sql.number_sql localizes
            self.connection.execute(f"SET {setting} = {value}")

    def close(self) -> None:
        self.connection.close()
        self._remove_folder()

    def __enter__(self) -> DuckDBSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def source_sql(source, connection: duckdb.DuckDBPyConnection) -> str:
    """A FROM-able SQL text for a Parquet file or folder, a CSV file, a DuckDB relation or table name."""
    if isinstance(source, duckdb.DuckDBPyRelation):
        name = f"tabsynth_source_{id(source)}"
        source.create_view(name, replace=True)
        return sql.DUCKDB.quote(name)
    path = Path(source)
    if path.is_dir():
        return _parquet_folder_sql(path)
    if isinstance(source, str) and not path.exists() and not any(sep in source for sep in "/\\."):
        return sql.DUCKDB.quote(source)  # a table or view of the connection
    if not path.exists():
        raise InputError(f"input file not found: {source}")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return f"read_parquet({sql.DUCKDB.string(str(path))})"
    return _csv_sql(path, connection)


def _parquet_folder_sql(folder: Path) -> str:
    """The folder's part files as tabsynth.io.files reads them (no hidden or temporary files; hive partitions)."""
    parts = parquet_parts(folder)
    if not parts:
        raise InputError(f"input path is a folder without Parquet files (*.parquet): {folder}")
    files = ", ".join(sql.DUCKDB.string(str(part)) for part in parts)
    return f"read_parquet([{files}], union_by_name = true, hive_partitioning = true)"


def _csv_sql(path: Path, connection: duckdb.DuckDBPyConnection) -> str:
    """read_csv as tabsynth.io.files reads a CSV: same delimiter choice, leading spaces dropped, same NA strings,
    and columns typed as pandas types them (see TEXT_TYPES): every field is read as text (DuckDB's sniffer
    types " 0x10" as a number and " true" as text), then trimmed and cast."""
    d = sql.DUCKDB
    nulls = ", ".join(d.string(v) for v in (*PANDAS_NA, *EXTRA_NA_VALUES))
    scan = (f"read_csv({d.string(str(path))}, delim = {d.string(csv_delimiter(header_line(path)))}, header = true, "
            f"all_varchar = true)")
    trimmed = {name: f"CASE WHEN ltrim({d.quote(name)}) IN ({nulls}) THEN NULL ELSE ltrim({d.quote(name)}) END"
               for name in _describe(connection, scan, path.name)}
    typed = _text_column_types(connection, scan, trimmed, path.name)
    columns = ", ".join(f"{_cast(expr, typed[name])} AS {d.quote(name)}" for name, expr in trimmed.items())
    return f"(SELECT {columns} FROM {scan})"


def _text_column_types(connection: duckdb.DuckDBPyConnection, scan: str, trimmed: dict[str, str],
                       label: str) -> dict[str, str]:
    """Each trimmed text column's type: the first of TEXT_TYPES that all its present values have (one scan)."""
    checks = [f"bool_and(v{i} IS NULL OR (regexp_full_match(v{i}, {sql.DUCKDB.string(pattern)}) "
              f"AND TRY_CAST(v{i} AS {sql_type}) IS NOT NULL))"
              for i in range(len(trimmed)) for sql_type, pattern in TEXT_TYPES]
    values = ", ".join(f"{expr} AS v{i}" for i, expr in enumerate(trimmed.values()))
    try:
        found = connection.execute(f"SELECT {', '.join(checks)} FROM (SELECT {values} FROM {scan})").fetchone()
    except duckdb.Error as exc:
        raise InputError(f"{label}: cannot read with DuckDB: {first_line(exc)}") from None
    width = len(TEXT_TYPES)
    return {name: next((sql_type for (sql_type, _), fits in zip(TEXT_TYPES, found[i * width:(i + 1) * width],
                                                                 strict=True) if fits), "VARCHAR")
            for i, name in enumerate(trimmed)}


def _cast(expr: str, sql_type: str) -> str:
    return expr if sql_type == "VARCHAR" else f"TRY_CAST({expr} AS {sql_type})"


def _describe(connection: duckdb.DuckDBPyConnection, source: str, label: str) -> dict[str, str]:
    try:
        rows = connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"{label}: cannot read with DuckDB: {first_line(exc)}") from None
    if not rows:
        raise InputError(f"{label}: the table has no columns")
    return {row[0]: str(row[1]) for row in rows}


class DuckDBCounts:
    """Counts over a table DuckDB scans: `source` is a Parquet file or folder of Parquet files, a CSV file,
    a DuckDB relation, or the name of a table of `connection`. `datetime_formats` (column -> strftime format)
    parse dates held as text; `method` chooses how code_counts counts ("stream" or "grouping_sets")."""

    def __init__(self, source, *, connection: duckdb.DuckDBPyConnection | None = None,
                 datetime_formats: Mapping[str, str] | None = None, label: str | None = None,
                 method: str = "stream"):
        self.method = method
        self._session = None if connection else DuckDBSession()  # owned: closed by `close`
        connection = connection or self._session.connection
        label = label or (Path(source).name if isinstance(source, (str, Path)) else "table")
        try:
            self._attach(connection, source_sql(source, connection), label, datetime_formats)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_sql(cls, connection: duckdb.DuckDBPyConnection, source: str, label: str,
                 datetime_formats: Mapping[str, str] | None = None) -> DuckDBCounts:
        """Counts over a FROM-able SQL text (a subquery, a view) of `connection`."""
        counts = cls.__new__(cls)
        counts.method, counts._session = "stream", None
        counts._attach(connection, source, label, datetime_formats)
        return counts

    def _attach(self, connection, source: str, label: str, datetime_formats: Mapping[str, str] | None) -> None:
        self.connection, self.source, self.label = connection, source, label
        self.types = _describe(connection, source, label)
        self.datetime_formats = dict(datetime_formats or {})

    def close(self) -> None:
        """Close the session (connection and spill folder) these counts opened; one given to them stays open."""
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> DuckDBCounts:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sample_frame(self, rows: int, seed: int) -> pd.DataFrame:
        """A uniform random sample of `rows` rows (all rows if fewer) as a DataFrame: for schema inference,
        validation and the DP schema facts (`privacy.facts.sampled_facts`, measured with noise), never for
        fitting a DP model."""
        text = (f"SELECT * FROM {self.source} AS _t USING SAMPLE reservoir({int(rows)} ROWS) "
                f"REPEATABLE ({int(seed)})")
        return self._run(text, "df")

    def query(self, text: str) -> dict[str, np.ndarray]:
        """Run SQL; the result as columns. A DuckDB failure (bad file, bad value) is one InputError line."""
        return self._run(text, "fetchnumpy")

    def rows(self, text: str) -> list[tuple]:
        """Run SQL; the result as tuples of Python values."""
        return self._run(text, "fetchall")

    def _run(self, text: str, fetch: str):
        try:
            return getattr(self.connection.execute(text), fetch)()
        except duckdb.Error as exc:
            raise InputError(f"{self.label}: DuckDB query failed: {first_line(exc)}") from None

    def category_counts(self, column: str) -> dict:
        rows = self.rows(sql.category_counts_sql(self.source, column, self.types[column], sql.DUCKDB))
        return {key: int(count) for key, count in rows}

    def bucket_counts(self, column: Column, grid: np.ndarray, side: str) -> np.ndarray:
        self._keep_format(column)
        result = self.query(sql.bucket_counts_sql(self.source, column, grid, side, sql.DUCKDB))
        return sql.parse_bucket_counts(result["k"], result[sql.COUNT], grid)

    def domain_counts(self, categories: Sequence[str],
                      buckets: Sequence[BucketRequest]) -> tuple[dict[str, dict], list[np.ndarray]]:
        """Two scans at most: all category counts in one aggregate (a grouping set per column), and all bucket
        histograms by numpy over the columns' numbers streamed from one query: DuckDB evaluates the CASE trees
        of np.searchsorted several times slower than numpy does (sql.domain_counts_via has them in the one
        aggregate too; Spark uses that)."""
        found, _ = sql.domain_counts_via(self.rows, self.source, self.types, categories, [], sql.DUCKDB)
        return found, self._streamed_bucket_counts(buckets)

    def _streamed_bucket_counts(self, buckets: Sequence[BucketRequest]) -> list[np.ndarray]:
        if not buckets:
            return []
        for column, _, _ in buckets:
            self._keep_format(column)
        columns = list({column.name: column for column, _, _ in buckets}.values())
        position = {column.name: i for i, column in enumerate(columns)}
        found = [np.zeros(len(grid) + 1, np.int64) for _, grid, _ in buckets]
        for batch in self._batches(sql.numbers_sql(self.source, columns, sql.DUCKDB)):
            numbers = [batch.column(i).to_numpy(zero_copy_only=False) for i in range(len(columns))]  # NULL: NaN
            for counts, (column, grid, side) in zip(found, buckets, strict=True):
                values = numbers[position[column.name]]
                counts += bucket_counts(values[~np.isnan(values)], grid, side)
        return found

    def _keep_format(self, column: Column) -> None:
        """Remember how the column's text dates parse, for the codecs (which do not carry it) of code_counts."""
        if column.datetime_format and column.name not in self.datetime_formats:
            self.datetime_formats[column.name] = column.datetime_format

    def code_counts(self, codecs: Sequence[Codec], cliques: Sequence[Clique]) -> dict[Clique, np.ndarray]:
        """One scan. By default DuckDB computes the codes and streams them (small integers, BATCH_ROWS rows at a
        time) to numpy, which counts every maximal clique per batch: with hundreds of cliques this is several
        times faster, and lighter, than DuckDB's GROUP BY GROUPING SETS (method="grouping_sets")."""
        if self.method == "grouping_sets":
            return sql.code_counts_via(self.query, self.source, codecs, cliques, sql.DUCKDB, self.datetime_formats,
                                       self.types)
        tally = CliqueTally(codecs, cliques)
        by_name = {codec.name: codec for codec in codecs}
        used = [by_name[name] for name in tally.names]
        text = sql.codes_sql(self.source, used, sql.DUCKDB, self.datetime_formats, self.types) if used else \
            f"SELECT 0 AS k FROM {self.source} AS _t"
        for batch in self._batches(text):
            tally.add({c.name: batch.column(i).to_numpy() for i, c in enumerate(used)}, batch.num_rows)
        return tally.result()

    def _batches(self, text: str):
        try:
            yield from self.connection.execute(text).to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            raise InputError(f"{self.label}: DuckDB query failed: {first_line(exc)}") from None

