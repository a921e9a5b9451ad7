"""The Spark path: Spark SQL counts equal the pandas and DuckDB counts on the same Parquet data, and a model
fitted through them samples over Spark tasks (independent streams) into a Parquet folder."""

import importlib.util
import os
import shutil
from itertools import combinations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tabsynth.errors import InputError
from tabsynth.io.files import read_table
from tabsynth.privacy.bounds import DATE_GRID, number_grid
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.privacy.preprocess import fit_encoding
from tabsynth.scale.duckdb_counts import DuckDBCounts
from tabsynth.table.counts import FrameCounts
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Facts

pytestmark = pytest.mark.slow  # starts a Spark session (a JVM)

PARTITIONS, ROWS, CHUNK = 4, 2001, 200


def mixed(n: int = 2000, seed: int = 3) -> pd.DataFrame:
    """Every column kind, with NULL, NaN, ±inf, values on grid points, quotes and backslashes in text."""
    rng = np.random.default_rng(seed)
    seen = pd.Timestamp("1999-12-30") + pd.to_timedelta(rng.integers(0, 5 * 86_400, n), "s")
    return pd.DataFrame({
        "age": rng.integers(0, 101, n),
        "odd": rng.choice([0.0, 0.5, 2.0, -1e300, np.inf, -np.inf, np.nan, 1e13, 3.25], n),
        "visits": pd.array(np.where(rng.random(n) < 0.05, None, rng.integers(0, 20, n)), dtype="Int64"),
        "ward": rng.choice(["icu", "o'neil \\ ward", "surgery", None], n, p=[0.4, 0.3, 0.25, 0.05]),
        "smoker": rng.random(n) < 0.3,
        "seen": pd.Series(seen).where(rng.random(n) > 0.05),
        "born": pd.to_datetime(rng.choice(["1990-01-01", "1975-06-30", None], n)).date,
    })


@pytest.fixture(scope="session")
def spark():
    missing = [what for what, ok in (("pyspark", importlib.util.find_spec("pyspark") is not None),
                                     ("Java", shutil.which("java") or os.environ.get("JAVA_HOME"))) if not ok]
    if missing:
        message = f"the Spark tests need {' and '.join(missing)} (pip install 'tabsynth[spark]', Java 17)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from tabsynth.scale.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory, spark):
    from tabsynth.scale.spark import SparkCounts

    path = tmp_path_factory.mktemp("spark") / "mixed.parquet"
    mixed().to_parquet(path, coerce_timestamps="us")  # Spark cannot read nanosecond Parquet timestamps
    raw = read_table(path)
    schema = infer_schema(raw)
    with DuckDBCounts(path) as duck:
        yield path, schema, FrameCounts(conform(raw, schema)), duck, SparkCounts(spark, path)


def test_spark_counts_equal_the_pandas_and_duckdb_counts(data):
    _, schema, frame, duck, spark_counts = data
    assert schema["born"].kind == "datetime"  # a Parquet DATE column is a date, counted in buckets like "seen"
    for name in ("ward",):
        expected = frame.category_counts(name)
        assert spark_counts.category_counts(name) == duck.category_counts(name) == expected
    assert "o'neil \\ ward" in spark_counts.category_counts("ward")
    for name, grid in (("odd", number_grid(None)), ("visits", number_grid(0)), ("seen", DATE_GRID),
                       ("born", DATE_GRID)):
        for side in ("left", "right"):
            expected = frame.bucket_counts(schema[name], grid, side)
            assert np.array_equal(spark_counts.bucket_counts(schema[name], grid, side), expected), (name, side)
            assert np.array_equal(duck.bucket_counts(schema[name], grid, side), expected), (name, side)
    requests = [(schema[name], grid, side) for name, grid in (("odd", number_grid(None)), ("seen", DATE_GRID),
                                                                ("born", DATE_GRID)) for side in ("left", "right")]
    batched, expected_batch = spark_counts.domain_counts(["ward"], requests), duck.domain_counts(["ward"], requests)
    assert batched[0] == expected_batch[0] == {"ward": spark_counts.category_counts("ward")}
    assert all(np.array_equal(a, b) and np.array_equal(a, frame.bucket_counts(*request))
               for a, b, request in zip(batched[1], expected_batch[1], requests, strict=True))
    codecs = fit_encoding(frame, schema.modelled(), rho=2.0, delta=1e-6, noise=RandomSource.seeded(1),
                          histogram_sigma=3.0, bins=5).encoding.codecs
    names = [c.name for c in codecs]
    cliques = [()] + [c for k in (1, 2, 3) for c in combinations(names, k)] + [tuple(reversed(names[:3]))]
    expected, got, duck_got = frame.code_counts(codecs, cliques), spark_counts.code_counts(codecs, cliques), \
        duck.code_counts(codecs, cliques)
    for clique in cliques:
        assert np.array_equal(got[clique], expected[clique]), clique
        assert np.array_equal(duck_got[clique], expected[clique]), clique
    assert got[()].tolist() == [len(frame)]


@pytest.fixture(scope="module")
def model(data):
    from tabsynth.run.spark import fit_from_counts

    _, schema, frame, _, spark_counts = data
    # declared bounds keep the number of Spark queries (and the test's time) down
    bounds = {"age": (0, 100), "odd": (-10, 1e13), "visits": (0, 19), "seen": ("1999-12-30", "2000-01-04"),
              "born": ("1970-01-01", "1995-01-01")}
    for name, (low, high) in bounds.items():
        schema = schema.replace(name, declared=Facts(min=low, max=high))
    params = {"rounds": 3, "iterations": 20, "final_iterations": 40, "degree": 2}
    through_spark = fit_from_counts(spark_counts, schema, Budget(2.0, 1e-8, RandomSource.seeded(4)), params)
    through_frame = fit_from_counts(frame, schema, Budget(2.0, 1e-8, RandomSource.seeded(4)), params)
    return through_spark, through_frame, schema


def parts(folder) -> list[pd.DataFrame]:
    return [pd.read_parquet(path) for path in sorted(folder.glob("part-*.parquet"))]


def test_a_fit_through_spark_samples_over_tasks_into_parquet(model, spark, tmp_path):
    from tabsynth.scale.spark import sample_to_parquet, shares, task_generator

    fitted, through_frame, schema = model
    (meta, arrays), (frame_meta, frame_arrays) = fitted.get_state(), through_frame.get_state()
    assert meta == frame_meta and all(np.array_equal(arrays[k], frame_arrays[k]) for k in frame_arrays)
    sample_to_parquet(fitted, ROWS, tmp_path / "a", spark, PARTITIONS, seed=11, schema=schema, chunk_rows=CHUNK)
    sample_to_parquet(fitted, ROWS, tmp_path / "b", spark, PARTITIONS, seed=11, schema=schema, chunk_rows=CHUNK)
    first, second = parts(tmp_path / "a"), parts(tmp_path / "b")
    assert [len(p) for p in first] == shares(ROWS, PARTITIONS) and sum(map(len, first)) == ROWS

    expected = fitted.sample(50, rng=np.random.default_rng(0))
    written = pq.read_table(tmp_path / "a").schema
    assert written.names == list(expected.columns)
    for field in pa.Schema.from_pandas(expected, preserve_index=False):
        got = written.field(field.name).type
        assert got == field.type or (pa.types.is_timestamp(got) and pa.types.is_timestamp(field.type)), field.name

    entropy = np.random.SeedSequence(11).entropy
    for task, part in enumerate(first):  # task i's rows are stream i's, drawn chunk by chunk
        rng = task_generator(entropy, task)
        local = pd.concat([fitted.sample(min(CHUNK, len(part) - start), rng=rng)
                           for start in range(0, len(part), CHUNK)], ignore_index=True)
        pd.testing.assert_frame_equal(part, local.astype(part.dtypes))
    heads = [p.head(500).reset_index(drop=True) for p in first]
    assert all(not heads[i].equals(heads[j]) for i, j in combinations(range(PARTITIONS), 2))

    def multiset(frames):
        whole = pd.concat(frames, ignore_index=True)
        return whole.sort_values(list(whole.columns), na_position="first").reset_index(drop=True)

    pd.testing.assert_frame_equal(multiset(first), multiset(second))


def test_bad_inputs_are_one_error_line(spark, model, tmp_path):
    from tabsynth.scale.spark import SparkCounts, sample_to_parquet

    with pytest.raises(InputError, match="input file not found"):
        SparkCounts(spark, tmp_path / "missing.parquet")
    assert not hasattr(SparkCounts, "row_count")  # an exact row count is easy to misuse on a DP path
    with pytest.raises(InputError) as caught:
        sample_to_parquet(model[0], -1, tmp_path / "out", spark, 0, schema=model[2])
    assert caught.value.problems == ("rows must be an integer >= 0, got -1",
                                     "partitions must be an integer >= 1, got 0")
    assert not (tmp_path / "out").exists()


def test_zoned_times_count_as_local_wall_clock_seconds_in_spark_as_in_pandas_and_duckdb(spark, tmp_path):
    from test_scale_sources import hourly_grid, zoned

    from tabsynth.scale.spark import SparkCounts

    path = tmp_path / "zoned.parquet"
    zoned().to_parquet(path, coerce_timestamps="us")
    raw = read_table(path)
    schema = infer_schema(raw)
    frame, grid = FrameCounts(conform(raw, schema)), hourly_grid()
    with DuckDBCounts(path) as duck:
        for side in ("left", "right"):
            expected = frame.bucket_counts(schema["when"], grid, side)
            assert np.array_equal(SparkCounts(spark, path).bucket_counts(schema["when"], grid, side), expected)
            assert np.array_equal(duck.bucket_counts(schema["when"], grid, side), expected)
