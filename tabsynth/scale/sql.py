"""SQL for the count queries of `counts.Counts`, shared by the DuckDB and Spark engines.

Every expression reproduces the pandas code it replaces: `number_sql` is `values.to_numbers`,
`code_sql` is `Codec.encode`, `searchsorted_sql` is `np.searchsorted`. Literals are written exactly (floats
through their repr, so they parse to the same double). Missing means NULL or, in a float column, NaN.

Categories match as in a Python dict lookup: numbers and booleans by value (1 == 1.0 == True), text only
text, dates only dates; this needs the column's SQL type. Without it, the column is cast to each category's
type (TRY_CAST), which can match more (a text "1" with the number 1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.table.codecs import BinCodec, CategoryCodec, Codec
from tabsynth.table.counts import BucketRequest, Clique, covering_groups, derive_counts
from tabsynth.table.schema import Column

FLOAT_MAX = repr(float(np.finfo(float).max))
SET_CELLS = 2**16  # cells of one grouping set: its result rows stay few while sets cover several cliques each
SET_ID, COUNT = "_set", "_n"  # result columns of grouping_sets_sql besides the key columns k0, k1, ...


@dataclass(frozen=True)
class Dialect:
    """What differs between engines; templates take the expression as {0}."""

    name: str
    quote_char: str  # around identifiers; doubled inside them
    epoch_template: str  # timestamp/date {0} -> wall-clock seconds since 1970 (floored) as a double
    local_template: str  # zoned timestamp {0} (read as UTC) -> its wall-clock time in zone {1}, without the zone
    nan_template: str  # double {0} -> is it NaN
    try_cast_template: str  # {0} as type {1}, NULL where it does not convert
    strptime_template: str | None  # text {0} parsed with strftime format {1}; None: the engine has none
    string_type: str
    backslash_escapes: bool  # string literals escape quotes with a backslash (Spark) instead of doubling them
    grouping_takes_one_column: bool = False  # GROUPING(k) only (Spark): the set id is summed bit by bit

    def grouping_id(self, keys: Sequence[str]) -> str:
        """Bit i (from the left) set where keys[i] is not grouped in the row's grouping set."""
        if not self.grouping_takes_one_column:
            return f"GROUPING({', '.join(keys)})"
        bits = [f"CAST(GROUPING({key}) AS BIGINT) * {2 ** (len(keys) - 1 - i)}" for i, key in enumerate(keys)]
        return f"({' + '.join(bits)})"

    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return f"{q}{identifier.replace(q, q + q)}{q}"

    def epoch_seconds(self, expr: str) -> str:
        return self.epoch_template.format(expr)

    def is_nan(self, expr: str) -> str:
        return self.nan_template.format(expr)

    def try_cast(self, expr: str, sql_type: str) -> str:
        return self.try_cast_template.format(expr, sql_type)

    def string(self, text: str) -> str:
        if self.backslash_escapes:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"

    def literal(self, value) -> str:
        """`value` as a SQL literal of its own type (None -> NULL)."""
        if value is None:
            return "NULL"
        if isinstance(value, (bool, np.bool_)):
            return "TRUE" if value else "FALSE"
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        if isinstance(value, (float, np.floating)):
            return f"CAST({self.string(repr(float(value)))} AS DOUBLE)"  # repr round-trips; no DECIMAL detour
        if isinstance(value, (pd.Timestamp, dt.datetime)):
            return f"TIMESTAMP {self.string(_utc_wall_clock(pd.Timestamp(value)).isoformat(sep=' '))}"
        if isinstance(value, dt.date):
            return f"DATE {self.string(value.isoformat())}"
        if isinstance(value, str):
            return self.string(value)
        raise TypeError(f"no SQL literal for a value of type {type(value).__name__}")

    def sql_type(self, value) -> str:
        """The type a column is cast to before it is compared with `value`'s literal."""
        if isinstance(value, (bool, np.bool_)):
            return "BOOLEAN"
        if isinstance(value, (int, np.integer)):
            return "BIGINT"
        if isinstance(value, (float, np.floating)):
            return "DOUBLE"
        if isinstance(value, (pd.Timestamp, dt.datetime)):
            return "TIMESTAMP"
        if isinstance(value, dt.date):
            return "DATE"
        return self.string_type


def _utc_wall_clock(stamp: pd.Timestamp) -> pd.Timestamp:
    """A zoned time as its UTC time without the zone (how the engines, in a UTC session, read a zoned column)."""
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC").tz_localize(None)


DUCKDB = Dialect(
    name="duckdb",
    quote_char='"',
    epoch_template="CAST(floor(epoch_us(CAST({0} AS TIMESTAMP)) / 1000000) AS DOUBLE)",
    nan_template="isnan({0})",
    try_cast_template="TRY_CAST({0} AS {1})",
    local_template="timezone({1}, CAST({0} AS TIMESTAMPTZ))",
    strptime_template="try_strptime(CAST({0} AS VARCHAR), {1})",
    string_type="VARCHAR",
    backslash_escapes=False,
)


def number_sql(column: Column, dialect: Dialect) -> str:
    """The column as a double, as `values.to_numbers` sees it (±inf clamped, dates as seconds), or NULL."""
    name = dialect.quote(column.name)
    if column.kind == "datetime":
        stamp = dialect.try_cast(name, "TIMESTAMP")
        if column.datetime_format and dialect.strptime_template:
            parsed = dialect.strptime_template.format(name, dialect.string(column.datetime_format))
            stamp = f"COALESCE({stamp}, {parsed})"
        zone = time_zone(column.dtype)
        if zone:  # as values.to_numbers: local wall-clock time in the column's zone
            stamp = dialect.local_template.format(stamp, dialect.string(zone))
        return dialect.epoch_seconds(stamp)
    value = dialect.try_cast(name, "DOUBLE")
    return (f"CASE WHEN {value} IS NULL OR {dialect.is_nan(value)} THEN NULL "
            f"WHEN {value} > {FLOAT_MAX} THEN {FLOAT_MAX} WHEN {value} < -{FLOAT_MAX} THEN -{FLOAT_MAX} "
            f"ELSE {value} END")


def time_zone(dtype: str | None) -> str | None:
    """The zone of a zoned datetime dtype ("datetime64[ns, Europe/Berlin]"); None for another dtype or UTC."""
    try:
        zone = getattr(pd.api.types.pandas_dtype(dtype), "tz", None) if dtype else None
    except TypeError:
        return None
    return None if zone is None or str(zone) == "UTC" else str(zone)


def missing_sql(name: str, sql_type: str, dialect: Dialect) -> str:
    """True where the column is missing the way pandas sees it: NULL, or NaN in a float column."""
    quoted = dialect.quote(name)
    if sql_type.upper() in ("DOUBLE", "FLOAT", "REAL", "FLOAT4", "FLOAT8"):
        return f"({quoted} IS NULL OR {dialect.is_nan(quoted)})"
    return f"{quoted} IS NULL"


def searchsorted_sql(expr: str, points: Sequence[float], side: str, dialect: Dialect,
                     results: Sequence[int] | None = None, start: int = 0) -> str:
    """np.searchsorted(points, expr, side) as a balanced CASE tree (log2 comparisons per row), mapped through
    `results` (results[i] for index i) when given."""
    stop = start + len(points)
    if start == stop:
        return str(results[start] if results is not None else start)
    middle = (start + stop) // 2
    below = "<=" if side == "left" else "<"  # index <= middle
    left = searchsorted_sql(expr, points[: middle - start], side, dialect, results, start)
    right = searchsorted_sql(expr, points[middle - start + 1:], side, dialect, results, middle + 1)
    return f"CASE WHEN {expr} {below} {dialect.literal(float(points[middle - start]))} THEN {left} ELSE {right} END"


def code_sql(codec: Codec, dialect: Dialect, value: str, sql_type: str | None = None) -> str:
    """`codec.encode` as a SQL expression of `value`: for categories the column's value, of type `sql_type`; for
    bins the column's number_sql."""
    if isinstance(codec, CategoryCodec):
        return _category_code_sql(codec, value, dialect, sql_type)
    return _bin_code_sql(codec, value, dialect)


def value_family(sql_type: str | None) -> str | None:
    """Which Python values a column of this SQL type can equal: number, boolean, text, date, timestamp."""
    name = (sql_type or "").lower().split("(")[0].strip()
    if name in ("boolean", "bool"):
        return "boolean"
    if name.startswith(("decimal", "numeric", "float", "double", "real")) or name.endswith(("int", "integer")) \
            or name in ("long", "short", "byte", "int1", "int2", "int4", "int8"):
        return "number"
    if name.startswith(("varchar", "string", "text", "char")):
        return "text"
    if name == "date":
        return "date"
    return "timestamp" if name.startswith("timestamp") else None


def _category_code_sql(codec: CategoryCodec, value: str, dialect: Dialect, sql_type: str | None) -> str:
    missing = int(codec.encode(pd.Series([None], dtype=object))[0])
    # with an other cell, a value that is not released (but not missing) codes to it
    fallback = f"CASE WHEN {value} IS NULL THEN {missing} ELSE {len(codec.values) - 1} END" \
        if codec.other else str(missing)
    later_first = list(reversed(list(enumerate(codec.values))))  # later duplicates win, as in a dict lookup
    family = value_family(sql_type)
    if family is None:
        return _category_code_by_casts(later_first, value, dialect, fallback)
    subject = f"CAST({value} AS INTEGER)" if family == "boolean" else value
    pairs = [(_family_literal(category, family, dialect), code) for code, category in later_first]
    whens = " ".join(f"WHEN {literal} THEN {code}" for literal, code in pairs if literal is not None)
    return f"CASE {subject} {whens} ELSE {fallback} END" if whens else str(fallback)


def _family_literal(category, family: str, dialect: Dialect) -> str | None:
    """The category's literal when a column of `family` can equal it, else None."""
    if family in ("number", "boolean"):
        numeric = isinstance(category, (bool, int, float, np.bool_, np.integer, np.floating))
        if not numeric or category != category:  # NaN equals nothing
            return None
        return str(int(category)) if isinstance(category, (bool, np.bool_)) else dialect.literal(category)
    if family == "text":
        return dialect.literal(category) if isinstance(category, str) else None
    is_stamp = isinstance(category, (pd.Timestamp, dt.datetime))
    if family == "timestamp":
        return dialect.literal(category) if is_stamp else None
    return dialect.literal(category) if isinstance(category, dt.date) and not is_stamp else None


def _category_code_by_casts(later_first: list, value: str, dialect: Dialect, fallback: str) -> str:
    by_type: dict[str, list[tuple[str, int]]] = {}
    for code, category in later_first:
        by_type.setdefault(dialect.sql_type(category), []).append((dialect.literal(category), code))
    cases = [f"CASE {dialect.try_cast(value, sql_type)} " + " ".join(f"WHEN {lit} THEN {code}" for lit, code in pairs)
             + " END" for sql_type, pairs in by_type.items()]
    return f"COALESCE({', '.join([*cases, fallback])})"


def _bin_code_sql(codec: BinCodec, number: str, dialect: Dialect) -> str:
    """The code is groups[clip(searchsorted(edges, x, 'right') - 1)]: within a run of cells of one group only the
    run's upper edge matters, so the tree compares x with those edges only."""
    missing = int(codec.encode(pd.Series([np.nan]))[0])
    groups = np.asarray(codec.groups)
    last_of_run = np.flatnonzero(np.append(groups[1:] != groups[:-1], True))
    uppers = [float(codec.edges[i + 1]) for i in last_of_run[:-1]]  # x < upper -> this run's group or lower
    tree = searchsorted_sql(number, uppers, "right", dialect, [int(groups[i]) for i in last_of_run])
    return f"CASE WHEN ({number}) IS NULL THEN {missing} ELSE {tree} END"


def category_counts_sql(source_sql: str, name: str, sql_type: str, dialect: Dialect) -> str:
    quoted = dialect.quote(name)
    return (f"SELECT {quoted} AS k, COUNT(*) AS {COUNT} FROM {source_sql} AS _t "
            f"WHERE NOT {missing_sql(name, sql_type, dialect)} GROUP BY {quoted}")


def bucket_counts_sql(source_sql: str, column: Column, grid: np.ndarray, side: str, dialect: Dialect) -> str:
    """Rows per bucket of np.searchsorted(grid, x, side) (key k), present values only; x, the column's number,
    is computed once per row."""
    tree = searchsorted_sql("x", list(grid), side, dialect)
    return (f"SELECT {tree} AS k, COUNT(*) AS {COUNT} FROM (SELECT {number_sql(column, dialect)} AS x "
            f"FROM {source_sql} AS _t) AS _x WHERE x IS NOT NULL GROUP BY k")


def parse_bucket_counts(keys: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return np.bincount(np.asarray(keys, np.int64), weights=np.asarray(counts), minlength=len(grid) + 1).astype(np.int64)


def domain_counts_sql(source_sql: str, categories: Sequence[tuple[str, str]], buckets: Sequence[BucketRequest],
                      dialect: Dialect) -> str:
    """category_counts of each (name, SQL type) in `categories` (key c{i}) and bucket_counts of each request in
    `buckets` (key b{i}) in one scan: one aggregate with a grouping set per key. A missing value is a NULL key,
    and each column's number is computed once per row, whatever its requests."""
    numbers: dict[str, tuple[str, str]] = {}  # column name -> (alias, number_sql)
    for column, _, _ in buckets:
        numbers.setdefault(column.name, (f"x{len(numbers)}", number_sql(column, dialect)))
    inner = [f"CASE WHEN {missing_sql(name, sql_type, dialect)} THEN NULL ELSE {dialect.quote(name)} END AS c{i}"
             for i, (name, sql_type) in enumerate(categories)]
    inner += [f"{expr} AS {alias}" for alias, expr in numbers.values()]
    keys = [f"c{i}" for i in range(len(categories))]
    outer = list(keys)
    for i, (column, grid, side) in enumerate(buckets):
        x = numbers[column.name][0]
        outer.append(f"CASE WHEN {x} IS NULL THEN NULL ELSE {searchsorted_sql(x, list(grid), side, dialect)} END "
                     f"AS b{i}")
        keys.append(f"b{i}")
    sets = ", ".join(f"({key})" for key in keys)
    return (f"SELECT {', '.join(keys)}, COUNT(*) AS {COUNT} FROM (SELECT {', '.join(outer)} FROM "
            f"(SELECT {', '.join(inner)} FROM {source_sql} AS _t) AS _x) AS _k GROUP BY GROUPING SETS ({sets})")


def numbers_sql(source_sql: str, columns: Sequence[Column], dialect: Dialect) -> str:
    """One row per table row: x{i} is columns[i]'s number_sql (a DOUBLE, NULL where missing)."""
    numbers = ", ".join(f"{number_sql(column, dialect)} AS x{i}" for i, column in enumerate(columns))
    return f"SELECT {numbers} FROM {source_sql} AS _t"


def parse_domain_counts(rows: Sequence[tuple], categories: int,
                        grids: Sequence[np.ndarray]) -> tuple[list[dict], list[np.ndarray]]:
    """The rows of domain_counts_sql as the category counts and the bucket counts. Each row belongs to the one
    grouping set whose key it holds; a row holding none counts the missing values of some column."""
    found: list[dict] = [{} for _ in range(categories)]
    buckets = [np.zeros(len(grid) + 1, np.int64) for grid in grids]
    for *keys, count in rows:
        held = next((i for i, key in enumerate(keys) if key is not None), None)
        if held is None:
            continue
        if held < categories:
            found[held][keys[held]] = int(count)
        else:
            buckets[held - categories][int(keys[held])] += int(count)
    return found, buckets


def domain_counts_via(rows: Callable[[str], list[tuple]], source_sql: str, types: Mapping[str, str],
                      categories: Sequence[str], buckets: Sequence[BucketRequest], dialect: Dialect,
                      max_keys: int | None = None) -> tuple[dict[str, dict], list[np.ndarray]]:
    """Counts.domain_counts in one scan, or one per `max_keys` requests where the engine caps the keys of an
    aggregate. `rows` runs SQL and returns its rows as tuples of Python values; `types` are the SQL types."""
    requests: list = [*categories, *buckets]  # categories first: a chunk's buckets keep their order
    step = max_keys or max(len(requests), 1)
    found, counted = {}, []
    for start in range(0, len(requests), step):
        names = [r for r in requests[start:start + step] if isinstance(r, str)]
        asked = [r for r in requests[start:start + step] if not isinstance(r, str)]
        text = domain_counts_sql(source_sql, [(name, types[name]) for name in names], asked, dialect)
        by_name, by_request = parse_domain_counts(rows(text), len(names), [grid for _, grid, _ in asked])
        found.update(zip(names, by_name, strict=True))
        counted += by_request
    return found, counted


def codes_sql(source_sql: str, codecs: Sequence[Codec], dialect: Dialect,
              datetime_formats: Mapping[str, str] | None = None, types: Mapping[str, str] | None = None) -> str:
    """One row per table row: column k{i} is codecs[i]'s code (an INTEGER). Each number is computed once per row
    (inner query), then coded. `types` are the columns' SQL types (for categories), `datetime_formats` parse
    dates held as text."""
    formats, types = datetime_formats or {}, types or {}
    values = ", ".join(
        f"{dialect.quote(c.name) if isinstance(c, CategoryCodec) else code_value_sql(c, dialect, formats)} AS v{i}"
        for i, c in enumerate(codecs))
    codes = ", ".join(f"CAST({code_sql(c, dialect, f'v{i}', sql_type=types.get(c.name))} AS INTEGER) AS k{i}"
                      for i, c in enumerate(codecs))
    return f"SELECT {codes} FROM (SELECT {values} FROM {source_sql} AS _t) AS _v"


def grouping_sets_sql(source_sql: str, codecs: Sequence[Codec], cliques: Sequence[Clique], dialect: Dialect,
                      datetime_formats: Mapping[str, str] | None = None,
                      types: Mapping[str, str] | None = None) -> str:
    """One scan counting every clique: key k{i} is the code of the i-th codec used by some clique, `_set` the
    GROUPING() id of the row's grouping set, `_n` the count."""
    used = [codec for codec in codecs if any(codec.name in clique for clique in cliques)]
    if not used:
        return f"SELECT 0 AS {SET_ID}, COUNT(*) AS {COUNT} FROM {source_sql} AS _t"
    keys = [f"k{i}" for i in range(len(used))]
    position = {codec.name: i for i, codec in enumerate(used)}
    sets = ", ".join("(" + ", ".join(keys[position[name]] for name in clique) + ")" for clique in cliques)
    return (f"SELECT {', '.join(keys)}, {dialect.grouping_id(keys)} AS {SET_ID}, COUNT(*) AS {COUNT} "
            f"FROM ({codes_sql(source_sql, used, dialect, datetime_formats, types)}) AS _codes "
            f"GROUP BY GROUPING SETS ({sets})")


def code_value_sql(codec: BinCodec, dialect: Dialect, datetime_formats: Mapping[str, str]) -> str:
    column = Column(codec.name, codec.kind, codec.dtype, datetime_format=datetime_formats.get(codec.name))
    return number_sql(column, dialect)


def parse_grouping_sets(columns: Mapping[str, np.ndarray], codecs: Sequence[Codec],
                        cliques: Sequence[Clique]) -> dict[Clique, np.ndarray]:
    """The result of grouping_sets_sql (column name -> values) as flat count arrays, one per clique."""
    used = [codec for codec in codecs if any(codec.name in clique for clique in cliques)]
    position = {codec.name: i for i, codec in enumerate(used)}
    sizes = {codec.name: codec.size for codec in used}
    set_ids = np.asarray(np.ma.filled(columns[SET_ID], 0), np.int64)
    counts = np.asarray(np.ma.filled(columns[COUNT], 0), np.int64)
    out = {}
    for clique in cliques:
        grouped = {position[name] for name in clique}
        set_id = sum(1 << (len(used) - 1 - i) for i in range(len(used)) if i not in grouped)
        rows = set_ids == set_id
        keys = tuple(np.asarray(np.ma.filled(columns[f"k{position[name]}"], 0), np.int64)[rows] for name in clique)
        shape = tuple(sizes[name] for name in clique)
        cells = np.ravel_multi_index(keys, shape) if clique else np.zeros(int(rows.sum()), np.int64)
        out[clique] = np.bincount(cells, weights=counts[rows], minlength=int(np.prod(shape))).astype(np.int64)
    return out


def code_counts_via(query: Callable[[str], Mapping[str, np.ndarray]], source_sql: str, codecs: Sequence[Codec],
                    cliques: Sequence[Clique], dialect: Dialect,
                    datetime_formats: Mapping[str, str] | None = None,
                    types: Mapping[str, str] | None = None) -> dict[Clique, np.ndarray]:
    """Counts.code_counts in one scan: a few covering column groups by GROUPING SETS (an engine expands each row
    once per set: 12 columns' 220 triples in ~70 sets of at most SET_CELLS cells), every clique summed from one.
    `query` runs SQL and returns its result as columns (name -> array); `types` are the columns' SQL types."""
    sizes = {codec.name: codec.size for codec in codecs}
    groups = covering_groups(cliques, sizes, max_cells=SET_CELLS)
    sql = grouping_sets_sql(source_sql, codecs, groups, dialect, datetime_formats, types)
    return derive_counts(parse_grouping_sets(query(sql), codecs, groups), cliques, sizes)
