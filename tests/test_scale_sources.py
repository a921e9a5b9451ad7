"""DuckDB reads sources as tabsynth reads them: Parquet folders, CSVs with spaces and '?', zoned times."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_scale_duckdb import both, codecs_for, mixed, parquet  # noqa: F401  (fixtures)

from tabsynth.io.files import read_table
from tabsynth.privacy.bounds import DATE_GRID, NUMBER_GRID, number_grid
from tabsynth.scale.duckdb_counts import DuckDBCounts
from tabsynth.table.counts import FrameCounts
from tabsynth.table.infer import conform, infer_schema


def test_a_parquet_folder_is_read_as_pandas_reads_it_part_files_only(tmp_path):
    rng = np.random.default_rng(5)

    def part(n, wards):
        return pd.DataFrame({"ward": rng.choice(wards, n), "age": rng.integers(0, 100, n)})

    folder = tmp_path / "visits"
    (folder / "_temporary").mkdir(parents=True)
    part(300, ["icu", "surgery"]).to_parquet(folder / "part-0.parquet")
    part(200, ["icu", "surgery"]).to_parquet(folder / "part-1.pq")
    part(50, ["junk"]).to_parquet(folder / "_temporary" / "part-0.parquet")
    part(50, ["hidden"]).to_parquet(folder / ".hidden.parquet")
    (folder / "_SUCCESS").write_text("")
    only_pq = tmp_path / "pq"
    only_pq.mkdir()
    part(100, ["a", "b"]).to_parquet(only_pq / "part-0.pq")
    hive = tmp_path / "hive"
    for year in (2023, 2024):
        (hive / f"year={year}").mkdir(parents=True)
        part(100 + year % 2 * 50, ["a", "b"]).to_parquet(hive / f"year={year}" / "part-0.parquet")
    for path, categories in ((folder, ["ward"]), (only_pq, ["ward"]), (hive, ["ward", "year"])):
        raw = read_table(path)
        frame, schema = FrameCounts(raw), infer_schema(raw)
        with DuckDBCounts(path) as duck:
            for name in categories:
                assert duck.category_counts(name) == frame.category_counts(name), (path.name, name)
            for side in ("left", "right"):
                assert np.array_equal(duck.bucket_counts(schema["age"], NUMBER_GRID, side),
                                      frame.bucket_counts(schema["age"], NUMBER_GRID, side))
    assert len(read_table(folder)) == 500 and set(read_table(folder)["ward"]) == {"icu", "surgery"}


# ---- CSV typing ---------------------------------------------------------------------------------------------


def adult_like_csv(path: Path, n: int = 500) -> Path:
    """Spaced like the UCI original (", " between fields), '?' for missing values."""
    rng = np.random.default_rng(8)
    lines = ["age, flag, hours, workclass, score, seen"]
    for i in range(n):
        age = " ?" if i % 17 == 0 else f" {rng.integers(17, 90)}"
        hours = " ?" if i % 23 == 0 else f" {rng.choice([12.5, 40.0, 37.25])}"
        work = " ?" if i % 11 == 0 else f" {rng.choice(['Private', 'State-gov'])}"
        lines.append(f"{age}, {'true' if i % 2 else 'false'}, {hours.strip()},{work}, {rng.integers(0, 5)}, "
                     f"2020-01-{1 + i % 28:02d}")
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_csv_counts_match(path: Path, categories=None) -> None:
    raw = read_table(path)
    schema = infer_schema(raw)
    frame = FrameCounts(raw)
    with DuckDBCounts(path) as duck:
        names = categories or [c.name for c in schema.columns if c.kind == "categorical"]
        for name in names:
            assert duck.category_counts(name) == frame.category_counts(name), name
        for column in schema.modelled():
            if column.kind in ("numerical", "datetime"):
                grid = DATE_GRID if column.kind == "datetime" else number_grid(column.decimals)
                for side in ("left", "right"):
                    assert np.array_equal(duck.bucket_counts(column, grid, side),
                                          frame.bucket_counts(column, grid, side)), (column.name, side)
        conformed = FrameCounts(conform(raw, schema))
        codecs = codecs_for(conformed, schema, "uniform")
        cliques = [(c.name,) for c in codecs]
        expected, got = conformed.code_counts(codecs, cliques), duck.code_counts(codecs, cliques)
        for clique in cliques:
            assert np.array_equal(got[clique], expected[clique]), clique


def test_a_csv_with_leading_spaces_types_its_columns_as_pandas_does(tmp_path):
    path = adult_like_csv(tmp_path / "adult_like.csv")
    raw = read_table(path)
    assert raw["flag"].dtype == bool and raw["age"].dtype == float and raw["score"].dtype == np.int64
    with DuckDBCounts(path) as duck:
        assert duck.types["flag"] == "BOOLEAN" and duck.types["age"] == "BIGINT"
        assert duck.types["hours"] == "DOUBLE" and duck.types["workclass"] == "VARCHAR"
        assert duck.category_counts("flag") == {True: 250, False: 250}
    assert_csv_counts_match(path, ["flag", "workclass", "score", "age"])


def test_text_that_duckdb_would_cast_loosely_stays_text_as_in_pandas(tmp_path):
    path = tmp_path / "loose.csv"
    path.write_text("a, b, c, d\n" + " 1.5, 0x10, 1_000, yes\n 2, 7, 3, no\n" * 5)
    raw = read_table(path)
    with DuckDBCounts(path) as duck:
        for name in "abcd":
            assert duck.category_counts(name) == FrameCounts(raw).category_counts(name), name


@pytest.mark.parametrize("spaced", [False, True])
@pytest.mark.slow
def test_adult_counts_match_pandas(adult_path, tmp_path, spaced):
    path = adult_path
    if spaced:  # as UCI publishes it
        path = tmp_path / "adult_spaced.csv"
        path.write_text(adult_path.read_text().replace(",", ", "))
    assert_csv_counts_match(path)


# ---- public helpers only ------------------------------------------------------------------------------------


def test_the_scale_modules_import_no_private_names_and_expose_no_exact_row_count():
    import ast

    import tabsynth.scale

    for module in Path(tabsynth.scale.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tabsynth"):
                assert not [a.name for a in node.names if a.name.startswith("_")], (module.name, node.module)
    from tabsynth.io import files
    from tabsynth.scale import duckdb_counts

    assert not hasattr(DuckDBCounts, "row_count")  # an exact row count is easy to misuse on a DP path
    assert getattr(duckdb_counts, "PARQUET_SUFFIXES", files.PARQUET_SUFFIXES) is files.PARQUET_SUFFIXES


# ---- time zones ---------------------------------------------------------------------------------------------


def zoned(n: int = 2000) -> pd.DataFrame:
    """Times around the end of summer time in Berlin: local and UTC wall-clock hours differ."""
    rng = np.random.default_rng(4)
    seconds = pd.to_timedelta(rng.integers(0, 3 * 86_400, n), "s")
    when = pd.Series(pd.Timestamp("2021-10-30", tz="UTC") + seconds).dt.tz_convert("Europe/Berlin")
    return pd.DataFrame({"when": when.where(rng.random(n) > 0.05), "ward": rng.choice(["a", "b"], n)})


def hourly_grid() -> np.ndarray:
    hours = pd.date_range("2021-10-29", "2021-11-03", freq="h")
    return hours.to_numpy("datetime64[s]").astype(np.int64).astype(float)


def test_zoned_times_count_as_local_wall_clock_seconds_in_every_engine(tmp_path):
    path = tmp_path / "zoned.parquet"
    zoned().to_parquet(path)
    raw = read_table(path)
    assert str(raw["when"].dtype) == "datetime64[ns, Europe/Berlin]"
    schema = infer_schema(raw)
    frame, grid = FrameCounts(conform(raw, schema)), hourly_grid()
    local_hours = raw["when"].dropna().dt.tz_localize(None).dt.floor("h")
    by_hour = np.bincount(np.searchsorted(grid, local_hours.to_numpy("datetime64[s]").astype(np.int64), "right"),
                          minlength=len(grid) + 1)
    assert np.array_equal(frame.bucket_counts(schema["when"], grid, "right"), by_hour)
    with DuckDBCounts(path) as duck:
        for side in ("left", "right"):
            assert np.array_equal(duck.bucket_counts(schema["when"], grid, side),
                                  frame.bucket_counts(schema["when"], grid, side)), side
        codecs = codecs_for(frame, schema, "quantile")
        cliques = [("when",), ("when", "ward")]
        expected, got = frame.code_counts(codecs, cliques), duck.code_counts(codecs, cliques)
        assert all(np.array_equal(got[c], expected[c]) for c in cliques)
