"""The distributed path: a private table's counts as Spark SQL, and sampling spread over Spark tasks.

`SparkCounts` answers the count queries of `counts.Counts` with the SQL of `scale.sql` (one GROUPING SETS
scan for all marginals of a round), so `dp-marginal` fits on a table that only a cluster can hold; the model
itself is small. `sample_to_parquet` ships the fitted model (its model folder: JSON + arrays, no pickle) to
every task; each task rebuilds it and samples its share of rows from its own random stream
(`SeedSequence(entropy).spawn(partitions)`), and Spark writes the rows as a Parquet folder. Sampling is
post-processing of the released model, so it costs no privacy budget.

All times are read in UTC (the session time zone), so dates count as the same wall-clock seconds as in pandas (a
zoned column by its local time in the zone of its dtype: `values.to_numbers`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa

from tabsynth.errors import InputError
from tabsynth.io.atomic import check_can_create, staged_directory
from tabsynth.io.sql import URL_START
from tabsynth.models.base import ARRAYS_FILE, MODEL_FILE, load_model, save_model
from tabsynth.scale import sql
from tabsynth.table.codecs import Codec
from tabsynth.table.counts import BucketRequest, Clique
from tabsynth.table.schema import Column, Schema

GROUPING_KEYS = 64  # Spark's cap on the expressions of GROUPING SETS (the grouping id is a 64-bit long)
CHUNK_ROWS = 100_000  # rows a task samples (and hands to Spark as one Arrow batch) at a time
ARROW_TYPES_SAMPLE_ROWS = 256  # rows a fitted model samples on the driver to learn its output's Arrow types
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",  # count results are small
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
TABLE_NAME = re.compile(r"^(?![^/\\]*\.(parquet|pq|csv)$)[^/\\:]+$", re.IGNORECASE)  # [db.]table, not a file

SPARK = sql.Dialect(
    name="spark",
    quote_char="`",
    epoch_template="CAST(floor(unix_micros(CAST({0} AS TIMESTAMP)) / 1000000) AS DOUBLE)",  # UTC session
    local_template="from_utc_timestamp({0}, {1})",
    nan_template="isnan({0})",
    try_cast_template="TRY_CAST({0} AS {1})",
    strptime_template=None,  # Spark parses Java patterns, not strftime: text dates must be ISO-like
    string_type="STRING",
    backslash_escapes=True,
    grouping_takes_one_column=True,  # and GROUPING_ID() wants the columns in the order Spark saw them first
)


def spark_session(master: str | None = "local[2]", app_name: str = "tabsynth", conf: dict | None = None):
    """A SparkSession reading times in UTC. `master=None` keeps the one `spark-submit` gave; a local master
    also gets the settings for one machine (no UI, few shuffle partitions) and this Python for its workers."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    settings = {"spark.sql.session.timeZone": "UTC"}
    if master is not None and master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers need this venv's packages
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings = LOCAL_CONF | settings
    for key, value in (settings | (conf or {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # also on a session that already existed
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_frame(spark, path: str | Path, fmt: str | None = None):
    """A Parquet file or folder, or a CSV file (header row, types inferred), as a Spark DataFrame."""
    text = str(path)
    if not URL_START.match(text) and not Path(text).exists():
        raise InputError(f"input file not found: {text}")
    fmt = fmt or ("csv" if text.lower().endswith((".csv", ".csv.gz")) else "parquet")
    if fmt not in ("csv", "parquet"):
        raise InputError(f"{text}: unknown input format {fmt!r} (use parquet or csv)")
    try:
        if fmt == "csv":
            return spark.read.options(header=True, inferSchema=True, mode="FAILFAST").csv(text)
        return spark.read.parquet(text)
    except _spark_errors() as exc:
        hint = " (write Parquet timestamps in microseconds for Spark, e.g. coerce_timestamps='us')" \
            if "NANOS" in str(exc) else ""
        raise InputError(f"{Path(text).name}: cannot read with Spark: {_first_line(exc)}{hint}") from None


def _spark_errors() -> tuple[type[Exception], ...]:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return PySparkException, Py4JJavaError


def _first_line(exc: Exception) -> str:
    """The message, not py4j's "An error occurred while calling o39.parquet." wrapper line."""
    lines = [line.strip(" :") for line in str(exc).splitlines() if line.strip(" :")]
    if len(lines) > 1 and lines[0].startswith("An error occurred while calling"):
        lines = lines[1:]
    return lines[0] if lines else type(exc).__name__


class SparkCounts:
    """Counts over a table Spark scans: `source` is a Spark DataFrame, a Parquet file or folder or a CSV file
    (a path or URI), or the name of a table or view of `spark`. Only counts come back to the driver."""

    def __init__(self, spark, source, *, label: str | None = None):
        self.spark, self.view = spark, f"tabsynth_source_{id(self)}"
        if isinstance(source, str) and TABLE_NAME.match(source) and not Path(source).exists():
            self.label = label or source
            frame = self._run(lambda: spark.table(source))
        elif isinstance(source, (str, Path)):
            self.label, frame = label or Path(str(source)).name, read_frame(spark, source)
        else:
            self.label, frame = label or "table", source
        frame.createOrReplaceTempView(self.view)
        self.source = SPARK.quote(self.view)
        self.types = dict(frame.dtypes)

    def query(self, text: str) -> dict[str, np.ndarray]:
        """Run Spark SQL; the result as columns (NULL read as 0: only grouping keys are ever NULL)."""
        table = self._run(lambda: self.spark.sql(text).toArrow())
        return {name: table.column(name).fill_null(0).to_numpy() for name in table.column_names}

    def rows(self, text: str) -> list[tuple]:
        return [tuple(row) for row in self._run(lambda: self.spark.sql(text).collect())]

    def _run(self, action):
        try:
            return action()
        except _spark_errors() as exc:
            raise InputError(f"{self.label}: Spark query failed: {_first_line(exc)}") from None

    def category_counts(self, column: str) -> dict:
        rows = self.rows(sql.category_counts_sql(self.source, column, self.types[column], SPARK))
        return {key: int(count) for key, count in rows}

    def bucket_counts(self, column: Column, grid: np.ndarray, side: str) -> np.ndarray:
        result = self.query(sql.bucket_counts_sql(self.source, column, grid, side, SPARK))
        return sql.parse_bucket_counts(result["k"], result[sql.COUNT], grid)

    def domain_counts(self, categories: Sequence[str],
                      buckets: Sequence[BucketRequest]) -> tuple[dict[str, dict], list[np.ndarray]]:
        """One scan per GROUPING_KEYS requests (GROUPING SETS), aggregated by the executors."""
        return sql.domain_counts_via(self.rows, self.source, self.types, categories, buckets, SPARK, GROUPING_KEYS)

    def code_counts(self, codecs: Sequence[Codec], cliques: Sequence[Clique]) -> dict[Clique, np.ndarray]:
        """All cliques in one scan (GROUPING SETS), aggregated by the executors."""
        return sql.code_counts_via(self.query, self.source, codecs, cliques, SPARK, types=self.types)

    def sample_frame(self, rows: int, seed: int):
        """A uniform random sample of `rows` rows as a pandas DataFrame (a top-k by a random key, per task): for
        schema inference and the DP schema facts (measured with noise), never for fitting a DP model."""
        text = f"SELECT * FROM {self.source} AS _t ORDER BY rand({int(seed)}) LIMIT {int(rows)}"
        return self._run(lambda: self.spark.sql(text).toPandas())


# ---- sampling over Spark tasks ------------------------------------------------------------------------------


def sample_to_parquet(model, rows: int, folder: str | Path, spark, partitions: int, seed: int | None = None, *,
                      schema: Schema, overwrite: bool = False, chunk_rows: int = CHUNK_ROWS) -> int:
    """Sample `rows` rows of a fitted `model` over `partitions` Spark tasks into the Parquet folder `folder`
    (a local path, written atomically, or a URI such as hdfs://... or s3a://...). Task i draws from
    `SeedSequence(entropy).spawn(partitions)[i]`, the entropy from the OS unless `seed` is given.
    Returns the number of rows written."""
    _check_sizes(rows, partitions, chunk_rows)
    if not is_remote(str(folder)):
        check_can_create(local_path(str(folder)), overwrite=overwrite)  # before any work
    entropy = np.random.SeedSequence(seed).entropy
    arrow_schema = sample_arrow_schema(model)
    payload = spark.sparkContext.broadcast(model_bytes(model, schema))
    sampler = _partition_sampler(payload, shares(rows, partitions), entropy, arrow_schema, chunk_rows)
    tasks = spark.range(partitions, numPartitions=partitions)
    synthetic = tasks.mapInArrow(sampler, _spark_schema(arrow_schema))
    try:
        _write_parquet(synthetic, str(folder), overwrite)
    finally:
        payload.destroy()
    return rows


def shares(rows: int, partitions: int) -> list[int]:
    """Rows per task: as equal as can be, the first tasks taking one more."""
    return [rows // partitions + (task < rows % partitions) for task in range(partitions)]


def task_generator(entropy: int, task: int) -> np.random.Generator:
    """Task `task`'s random stream: the same as `SeedSequence(entropy).spawn(partitions)[task]`."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(task,)))


def model_bytes(model, schema: Schema) -> tuple[bytes, bytes]:
    """The model folder's two files (model.json, arrays.npz), as bytes to send to the tasks."""
    with tempfile.TemporaryDirectory(prefix="tabsynth-model-") as folder:
        save_model(model, schema, folder)
        return (Path(folder) / MODEL_FILE).read_bytes(), (Path(folder) / ARRAYS_FILE).read_bytes()


def model_from_bytes(files: tuple[bytes, bytes]):
    """The model back from `model_bytes`, through `load_model`'s checks (hashes, no pickle)."""
    with tempfile.TemporaryDirectory(prefix="tabsynth-model-") as folder:
        (Path(folder) / MODEL_FILE).write_bytes(files[0])
        (Path(folder) / ARRAYS_FILE).write_bytes(files[1])
        return load_model(folder)[0]


def sample_arrow_schema(model) -> pa.Schema:
    """The Arrow types of `model.sample`'s columns, as Spark can hold them: timestamps in microseconds, plain
    (not large or dictionary) types, and text for a column that is all missing in the small sample."""
    frame = model.sample(ARROW_TYPES_SAMPLE_ROWS, rng=np.random.default_rng())
    inferred = pa.Schema.from_pandas(frame, preserve_index=False)
    return pa.schema([pa.field(f.name, _spark_ready(f.type)) for f in inferred])


def _spark_ready(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(kind):
        return _spark_ready(kind.value_type)
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz=kind.tz)
    if pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return pa.string()
    return kind


def _spark_schema(arrow_schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema)


def _partition_sampler(payload, task_rows: list[int], entropy: int, arrow_schema: pa.Schema, chunk_rows: int):
    """The function each Spark task runs over its ids (one per task): rebuild the model once, then sample
    each id's share in chunks from that id's own stream."""

    def sample_partition(batches):
        model = None
        for batch in batches:
            for task in batch.column(0).to_pylist():
                if model is None:
                    model = model_from_bytes(payload.value)
                rng = task_generator(entropy, task)
                for start in range(0, task_rows[task], chunk_rows):
                    frame = model.sample(min(chunk_rows, task_rows[task] - start), rng=rng)
                    yield from pa.Table.from_pandas(frame, arrow_schema, preserve_index=False, safe=False).to_batches()

    return sample_partition


def _write_parquet(frame, folder: str, overwrite: bool) -> None:
    """A URI is written by Spark's own committer; a local folder is staged beside its target and renamed
    into place, so a reader never sees half a folder."""
    remote = is_remote(folder)
    staging = nullcontext(folder) if remote else staged_directory(local_path(folder), overwrite=overwrite)
    with staging as target:
        mode = "overwrite" if overwrite or not remote else "errorifexists"
        frame.write.mode(mode).parquet(str(target))


def is_remote(folder: str) -> bool:
    """A URI Spark resolves (hdfs://, s3a://, ...), not a local path (plain, or file:)."""
    return bool(URL_START.match(folder)) and not folder.startswith("file:")


def local_path(folder: str) -> Path:
    """The local path of a plain path or a file: URI."""
    return Path(folder.removeprefix("file://").removeprefix("file:"))


def _check_sizes(rows: int, partitions: int, chunk_rows: int) -> None:
    limits = {"rows": (rows, 0), "partitions": (partitions, 1), "chunk_rows": (chunk_rows, 1)}
    problems = [f"{name} must be an integer >= {low}, got {value!r}" for name, (value, low) in limits.items()
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low]
    if problems:
        raise InputError(*problems)
