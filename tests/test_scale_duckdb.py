"""Count queries through DuckDB give exactly the pandas answers, so a DP fit reads the same counts either way."""

import dataclasses
import datetime as dt
from itertools import combinations
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import InputError
from tabsynth.io.files import read_table
from tabsynth.models.dp_marginal import DPMarginal
from tabsynth.models.pgm import Domain
from tabsynth.privacy.bounds import DATE_GRID, NUMBER_GRID, number_grid
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.privacy.preprocess import fit_encoding
from tabsynth.scale import sql
from tabsynth.scale.duckdb_counts import DuckDBCounts
from tabsynth.table.codecs import BinCodec, CategoryCodec, Encoding
from tabsynth.table.counts import CliqueTally, FrameCounts, covering_groups, maximal_cliques
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Facts


def mixed(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Every column kind, with NULL, NaN, ±inf and values sitting exactly on grid points."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(0, 101, n),  # 0, 1, 2, 5, 10, 20, 50, 100 are grid points
        "pay": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.gamma(2.0, 20_000, n), 2)),
        "odd": rng.choice([0.0, 0.5, 1.0, 2.0, 5.0, -1e300, np.inf, -np.inf, np.nan, 1e13, 3.25], n),
        "visits": pd.array(np.where(rng.random(n) < 0.05, None, rng.integers(0, 20, n)), dtype="Int64"),
        "ward": rng.choice(["icu", "o'neil ward", "surgery", None], n, p=[0.4, 0.3, 0.25, 0.05]),
        "grade": rng.choice([1, 2, 3], n),
        "smoker": rng.random(n) < 0.3,
        "seen": pd.Timestamp("1999-12-30") + pd.to_timedelta(rng.integers(0, 5 * 86_400, n), "s"),
        "born": pd.to_datetime(rng.choice(["1990-01-01", "1975-06-30", None], n)).date,
    })


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "mixed.parquet"
    raw = mixed()
    raw.loc[::40, "seen"] = pd.NaT
    raw.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def both(parquet):
    raw = read_table(parquet)
    schema = infer_schema(raw)
    schema = schema.replace("grade", kind="categorical")
    return FrameCounts(conform(raw, schema)), DuckDBCounts(parquet), schema


def codecs_for(frame_counts, schema, binning):
    prepared = fit_encoding(frame_counts, schema.modelled(), rho=2.0, delta=1e-6, noise=RandomSource.seeded(1),
                            histogram_sigma=3.0, binning=binning, bins=6)
    return prepared.encoding.codecs


def test_category_counts_match(both):
    frame, duck, schema = both
    for name in ("ward", "grade", "smoker"):
        assert duck.category_counts(name) == frame.category_counts(name)
    assert "o'neil ward" in duck.category_counts("ward") and None not in duck.category_counts("ward")


def test_bucket_counts_match_on_both_sides(both):
    frame, duck, schema = both
    for column in schema.modelled():
        if column.kind in ("numerical", "datetime"):
            grid = DATE_GRID if column.kind == "datetime" else number_grid(column.decimals)
            for side in ("left", "right"):
                expected = frame.bucket_counts(column, grid, side)
                assert np.array_equal(duck.bucket_counts(column, grid, side), expected), (column.name, side)


class QueryCounting(DuckDBCounts):
    """DuckDBCounts that keeps the SQL of every query it runs (each one scan of the table at least)."""

    def __init__(self, source, **kwargs):
        super().__init__(source, **kwargs)
        self.queries = []

    def _run(self, text, fetch):
        self.queries.append(text)
        return super()._run(text, fetch)

    def _batches(self, text):
        self.queries.append(text)
        return super()._batches(text)


def domain_requests(schema):
    categories = [c.name for c in schema.modelled() if c.kind == "categorical"]
    buckets = [(c, DATE_GRID if c.kind == "datetime" else number_grid(c.decimals), side) for c in schema.modelled()
               if c.kind in ("numerical", "datetime") for side in ("left", "right")]
    return categories, buckets


def test_domain_counts_are_the_per_column_counts_in_two_queries(both, parquet):
    frame, _, schema = both
    categories, buckets = domain_requests(schema)
    duck = QueryCounting(parquet)
    got, expected = duck.domain_counts(categories, buckets), frame.domain_counts(categories, buckets)
    assert len(duck.queries) == 2 and len(categories) == 2 and len(buckets) == 12
    assert got[0] == expected[0] == {name: frame.category_counts(name) for name in categories}
    for request, found, wanted in zip(buckets, got[1], expected[1], strict=True):
        assert np.array_equal(found, wanted) and np.array_equal(found, frame.bucket_counts(*request)), request[0].name
    assert duck.domain_counts([], []) == ({}, []) and len(duck.queries) == 2


def test_the_one_aggregate_domain_sql_spark_runs_is_one_scan_with_the_same_counts(both, parquet):
    frame, duck, schema = both
    categories, buckets = domain_requests(schema)
    expected = frame.domain_counts(categories, buckets)
    text = sql.domain_counts_sql(duck.source, [(n, duck.types[n]) for n in categories], buckets, sql.DUCKDB)
    plan = duck.rows("EXPLAIN " + text)[0][1]
    assert plan.count("READ_PARQUET") == 2 and plan.count("HASH_GROUP_BY") == 1  # one scan node (named twice)
    for max_keys in (None, 5):  # 14 keys by 5: 3 queries
        got = sql.domain_counts_via(duck.rows, duck.source, duck.types, categories, buckets, sql.DUCKDB, max_keys)
        assert got[0] == expected[0]
        assert all(np.array_equal(a, b) for a, b in zip(got[1], expected[1], strict=True))


@pytest.mark.parametrize("binning", ["quantile", "uniform"])
def test_the_domain_step_through_duckdb_is_three_queries_and_the_dataframe_fit(both, parquet, binning):
    frame, _, schema = both
    duck = QueryCounting(parquet)
    through_duck = fit_encoding(duck, schema.modelled(), rho=2.0, delta=1e-6, noise=RandomSource.seeded(1),
                                histogram_sigma=3.0, binning=binning, bins=6)
    through_frame = fit_encoding(frame, schema.modelled(), rho=2.0, delta=1e-6, noise=RandomSource.seeded(1),
                                 histogram_sigma=3.0, binning=binning, bins=6)
    assert len(duck.queries) == (3 if binning == "quantile" else 2)  # categories, bucket numbers, fine codes
    assert through_duck.encoding.state()[0] == through_frame.encoding.state()[0]
    assert [c.record for c in through_duck.charges] == [c.record for c in through_frame.charges]


@pytest.mark.parametrize(("binning", "method"), [("quantile", "stream"), ("uniform", "stream"),
                                                 ("quantile", "grouping_sets")])
def test_code_counts_match_for_cliques_of_every_size(both, parquet, binning, method):
    frame, _, schema = both
    duck = DuckDBCounts(parquet, method=method)
    codecs = codecs_for(frame, schema, binning)
    names = [c.name for c in codecs]
    cliques = [()] + [c for k in (1, 2, 3) for c in combinations(names, k)] + [tuple(reversed(names[:3]))]
    expected = frame.code_counts(codecs, cliques)
    got = duck.code_counts(codecs, cliques)
    codes = Encoding(tuple(codecs)).encode(frame.table)
    domain = Domain(tuple(names), tuple(c.size for c in codecs))
    for clique in cliques[:-1]:
        cells = np.ravel_multi_index(tuple(codes[:, domain.index(n)] for n in clique), domain.shape(clique)) \
            if clique else np.zeros(len(codes), np.int64)  # the plain count, as an independent oracle
        assert np.array_equal(expected[clique], np.bincount(cells, minlength=domain.size(clique)))
        assert np.array_equal(got[clique], expected[clique]), clique
    assert np.array_equal(got[cliques[-1]], expected[cliques[-1]])
    assert got[()].tolist() == [len(frame)]


def test_codes_match_when_values_sit_on_edges_and_categories_are_declared(both):
    frame, duck, _ = both
    edges = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 1e13])
    bins = BinCodec("odd", "numerical", "float64", edges, np.array([0, 0, 1, 2, 2]), np.ones(5), None, True)
    strict = dataclasses.replace(bins, nullable=False, name="age", dtype="int64")
    declared = CategoryCodec("ward", "object", ("surgery", "icu", "nobody", 7), False)
    numbers = CategoryCodec("grade", "int64", (3, 1.0, True, "2"), True)
    codecs = [bins, strict, declared, numbers]
    cliques = [(c.name,) for c in codecs] + [("odd", "ward", "grade")]
    expected = frame.code_counts(codecs, cliques)
    for method in ("stream", "grouping_sets"):
        duck.method = method
        got = duck.code_counts(codecs, cliques)
        for clique in cliques:
            assert np.array_equal(got[clique], expected[clique]), (method, clique)
    duck.method = "stream"


def test_codes_match_for_an_other_cell(both):
    """Values not released code to the other cell, missing ones to the missing cell (or, with none, the other)."""
    frame, duck, _ = both
    for nullable in (True, False):
        codecs = [CategoryCodec("ward", "object", ("icu", "(other)"), nullable, True)]
        expected = frame.code_counts(codecs, [("ward",)])[("ward",)]
        assert expected[1] > 0 and (expected[2] > 0 if nullable else len(expected) == 2)
        assert np.array_equal(duck.code_counts(codecs, [("ward",)])[("ward",)], expected)


def test_a_seeded_fit_through_duckdb_is_the_fit_through_the_dataframe(both):
    frame, duck, schema = both
    params = {"rounds": 4, "iterations": 20, "final_iterations": 40, "degree": 2}
    through_frame = DPMarginal(**params).fit(frame.table, schema, budget=Budget(2.0, 1e-8, RandomSource.seeded(9)))
    through_duck = DPMarginal(**params).fit(duck, schema, budget=Budget(2.0, 1e-8, RandomSource.seeded(9)))
    meta_frame, arrays_frame = through_frame.get_state()
    meta_duck, arrays_duck = through_duck.get_state()
    assert meta_duck == meta_frame
    assert arrays_duck.keys() == arrays_frame.keys()
    assert all(np.array_equal(arrays_duck[k], arrays_frame[k]) for k in arrays_frame)


def test_a_csv_reads_as_tabsynth_reads_it(tmp_path):
    path = tmp_path / "spaced.csv"
    path.write_text("age, ward, pay\n30, icu, 1.5\n41, ?, 2\n 7,  o'neil, ?\n30, icu,\n")
    frame, duck = FrameCounts(read_table(path)), DuckDBCounts(path)
    assert duck.category_counts("ward") == frame.category_counts("ward") == {"icu": 2, "o'neil": 1}
    schema = infer_schema(frame.table)
    for side in ("left", "right"):
        assert np.array_equal(duck.bucket_counts(schema["pay"], NUMBER_GRID, side),
                              frame.bucket_counts(schema["pay"], NUMBER_GRID, side))


def test_a_bad_source_is_one_input_error(tmp_path):
    with pytest.raises(InputError, match="input file not found"):
        DuckDBCounts(tmp_path / "missing.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="broken.parquet: cannot read with DuckDB") as caught:
        DuckDBCounts(broken)
    assert "\n" not in str(caught.value)


def test_literals_are_exact():
    d = sql.DUCKDB
    assert d.literal(0.1) == "CAST('0.1' AS DOUBLE)" and d.literal(True) == "TRUE" and d.literal(None) == "NULL"
    assert d.literal("it's") == "'it''s'" and d.literal(dt.date(2020, 2, 29)) == "DATE '2020-02-29'"
    assert d.literal(pd.Timestamp("2020-01-01 10:30")) == "TIMESTAMP '2020-01-01 10:30:00'"
    assert d.literal(np.int64(-3)) == "-3"
    spark_like = dataclasses.replace(d, backslash_escapes=True)
    assert spark_like.literal("a'b\\") == "'a\\'b\\\\'"
    values = [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -0.0]
    import duckdb

    back = duckdb.sql("SELECT " + ", ".join(d.literal(v) for v in values)).fetchall()[0]
    assert list(back) == values


def test_maximal_cliques_cover_every_requested_clique():
    cliques = [(), ("a",), ("b", "a"), ("a", "b"), ("a", "b", "c"), ("d",)]
    kept = maximal_cliques(cliques)
    assert {frozenset(c) for c in kept} == {frozenset("abc"), frozenset("d")}


def test_covering_groups_hold_every_clique_in_few_counts_within_the_cell_cap():
    sizes = {f"c{i}": size for i, size in enumerate([20, 16, 24, 16, 16, 10, 8, 25, 17, 2, 2, 20])}
    cliques = [c for k in (1, 2, 3) for c in combinations(sizes, k)]
    groups = covering_groups(cliques, sizes, max_cells=2**18)
    assert all(any(set(c) <= set(g) for g in groups) for c in cliques)
    assert all(np.prod([sizes[n] for n in g]) <= 2**18 for g in groups if len(g) > 3)
    assert len(groups) < len(maximal_cliques(cliques)) / 4  # 220 triples


def test_clique_tally_counts_every_clique_as_numpy_does():
    sizes = {"a": 7, "b": 3, "c": 11, "d": 2}
    rng = np.random.default_rng(0)
    codes = {name: rng.integers(0, size, 5000).astype(np.uint8) for name, size in sizes.items()}
    cliques = [(), ("c", "a"), ("a", "b", "d"), ("d",), ("b", "c", "d")]
    tally = CliqueTally([SimpleNamespace(name=n, size=s) for n, s in sizes.items()], cliques)
    for start in (0, 2500):
        tally.add({n: v[start:start + 2500] for n, v in codes.items()}, 2500)
    for clique, counts in tally.result().items():
        cells = np.ravel_multi_index([codes[n] for n in clique], [sizes[n] for n in clique]) if clique else \
            np.zeros(5000, np.int64)
        assert counts.tolist() == np.bincount(cells, minlength=counts.size).tolist()


def test_declared_facts_and_empty_columns_work_through_duckdb(both):
    _, duck, schema = both
    declared = schema.replace("pay", declared=Facts(min=0, max=200_000))
    model = DPMarginal(rounds=2, iterations=5, final_iterations=5, degree=1).fit(
        duck, declared, budget=Budget(1.0, 1e-8, RandomSource.seeded(2)))
    pay = model.encoding_.codecs[[c.name for c in model.encoding_.codecs].index("pay")]
    assert pay.edges[0] >= 0 and pay.edges[-1] <= 200_000 + 1
