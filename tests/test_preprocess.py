import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from tabsynth.privacy.domains import fine_edges, quantile_groups
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.privacy.preprocess import domain_mechanisms, fit_encoding
from tabsynth.table.codecs import Encoding
from tabsynth.table.counts import FrameCounts
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Facts


def people(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(17, 91, n),
        "pay": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.gamma(2.0, 20_000, n), 2)),
        "gain": np.where(rng.random(n) < 0.9, 0, rng.integers(100, 20_000, n)),
        "ward": rng.choice(["icu", "surgery", "oncology", None], n, p=[0.4, 0.3, 0.25, 0.05]),
        "smoker": rng.random(n) < 0.3,
        "seen": pd.Timestamp("2021-03-01", tz="Europe/Paris") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
    })


@pytest.fixture(scope="module")
def fitted():
    raw = people()
    schema = infer_schema(raw)
    table = conform(raw, schema)
    prepared = fit_encoding(table, schema.modelled(), rho=0.5, delta=1e-7, noise=RandomSource.seeded(3),
                            histogram_sigma=20.0)
    return table, schema, prepared.encoding, prepared


def test_spending_stays_within_the_given_rho_and_delta(fitted):
    _, _, _, prepared = fitted
    domain = [c for c in prepared.charges if c.record["what"][0] != "marginal"]
    assert sum(c.rho for c in domain) == pytest.approx(0.5)
    assert sum(c.delta for c in prepared.charges) == pytest.approx(1e-7)
    assert all("noisy" not in c.record and "values" not in c.record for c in prepared.charges)
    histograms = [c for c in prepared.charges if c.record["what"][0] == "marginal"]
    assert [c.record["what"][1] for c in histograms] == ["age", "pay", "gain", "seen"]
    assert all(c.rho == pytest.approx(1 / (2 * 20.0**2)) for c in histograms)


def test_fine_histograms_give_one_way_counts_over_the_codes(fitted):
    table, _, encoding, prepared = fitted
    codes = encoding.encode(table)
    for i, name in ((1, "pay"), (2, "gain")):
        measured = prepared.one_way[name]
        assert measured.noisy.shape == (encoding.sizes[i],)
        true = np.bincount(codes[:, i], minlength=encoding.sizes[i])
        assert np.abs(measured.noisy - true).max() < 8 * measured.sigma
        assert measured.sigma > 20.0, "a bin summed from several fine cells is noisier than one cell"


def test_codes_decode_to_values_in_the_same_cell(fitted):
    table, _, encoding, _ = fitted
    codes = encoding.encode(table)
    assert codes.shape == (len(table), 6)
    assert ((codes >= 0) & (codes < np.array(encoding.sizes))).all()
    decoded = encoding.decode(codes, np.random.default_rng(0))
    assert (encoding.encode(decoded) == codes).all()
    assert [str(t) for t in decoded.dtypes] == [str(t) for t in table.dtypes]
    assert (decoded["pay"].dropna() == decoded["pay"].dropna().round(2)).all()
    assert (decoded["seen"].dt.hour == 0).all(), "dates decode to whole days in their own time zone"


def test_missing_values_have_a_cell_where_the_dtype_allows_them(fitted):
    table, _, encoding, _ = fitted
    codes = encoding.encode(table)
    pay, age = encoding.codecs[1], encoding.codecs[0]
    assert (codes[table["pay"].isna().to_numpy(), 1] == pay.size - 1).all()
    assert age.nullable is False and pay.nullable is True
    assert encoding.decode(np.array([[0, pay.size - 1, 0, 0, 0, 0]]), np.random.default_rng(0))["pay"].isna().all()


def test_dp_bounds_land_on_the_grid_around_the_data(fitted):
    _, _, encoding, _ = fitted
    age = encoding.codecs[0]
    assert age.edges[0] == 10 and age.edges[-1] == 101, "ages 17..90 get the bounds 10 and 100 (inclusive)"
    gain = encoding.codecs[2]
    assert gain.edges[0] == 0 and gain.edges[1] == 1, "zero gets a cell of its own"


def test_rare_categories_are_not_released_and_order_is_public():
    raw = pd.DataFrame({"ward": ["b"] * 900 + ["a"] * 400 + ["CANARY-7731"]})
    schema = infer_schema(raw)
    prepared = fit_encoding(raw, schema.modelled(), rho=1.0, delta=1e-9, noise=RandomSource.seeded(0))
    encoding, charges = prepared.encoding, prepared.charges
    assert encoding.codecs[0].values == ("a", "b", "(other)"), "sorted by value, not by the private counts"
    assert encoding.encode(pd.DataFrame({"ward": ["CANARY-7731", None]})).ravel().tolist() == [2, 3]
    assert [c.record["what"] for c in charges] == [["categories", "ward"]]


def test_declared_domains_cost_nothing():
    raw = people(500)
    schema = infer_schema(raw)
    schema = schema.replace("ward", declared=Facts(categories=("icu", "surgery", "oncology", "psych")))
    schema = schema.replace("age", declared=Facts(min=0, max=120))
    columns = {c.name: c for c in schema.modelled()}
    assert [domain_mechanisms(columns[n]) for n in ("ward", "smoker", "age", "pay")] == [0, 0, 0, 2]
    prepared = fit_encoding(raw, [columns["ward"], columns["age"]], rho=1.0, delta=1e-9,
                            noise=RandomSource.seeded(0), binning="uniform")
    encoding = prepared.encoding
    assert prepared.charges == [] and prepared.one_way == {}
    assert encoding.codecs[0].values == ("icu", "surgery", "oncology", "psych")
    assert encoding.codecs[1].edges[0] == 0 and encoding.codecs[1].edges[-1] == 121


def test_state_is_json_and_arrays_and_round_trips(fitted):
    table, _, encoding, _ = fitted
    metas, arrays = encoding.state()
    json.dumps(metas, allow_nan=False)
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    restored = Encoding.from_state(json.loads(json.dumps(metas)), arrays)
    codes = encoding.encode(table)
    first = encoding.decode(codes, np.random.default_rng(5))
    assert restored.decode(codes, np.random.default_rng(5)).equals(first)


def test_the_state_ignores_observed_facts():
    raw = people(800)
    schema = infer_schema(raw)
    scrambled = schema
    for column in schema.modelled():
        scrambled = scrambled.replace(column.name, observed=Facts(min=-1, max=1, categories=("x",)), missing=0.5)
    states = [fit_encoding(conform(raw, s), s.modelled(), rho=0.3, delta=1e-8, noise=RandomSource.seeded(9),
                           histogram_sigma=30.0).encoding.state() for s in (schema, scrambled)]
    assert states[0][0] == states[1][0]
    assert all(np.array_equal(states[0][1][k], states[1][1][k]) for k in states[0][1])


def test_fine_edges_are_aligned_to_the_unit():
    edges = fine_edges(-5, 100, 1.0, 20)
    assert np.all(edges == np.round(edges)) and {0.0, 1.0} <= set(edges)
    assert edges[0] == -5 and edges[-1] >= 101
    cents = fine_edges(0.5, 10, 0.01, 7)
    assert np.allclose(cents * 100, np.round(cents * 100))


def test_quantile_groups_keep_a_heavy_cell_alone():
    weights = np.array([5, 5, 5, 500, 5, 5, 5, 5], dtype=float)
    groups = quantile_groups(weights, 4)
    assert (np.diff(groups) >= 0).all() and groups[0] == 0 and groups.max() < 4
    assert (groups == groups[3]).sum() == 1
    assert quantile_groups(np.zeros(8), 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_boolean_domain_is_public_and_dates_round_trip():
    raw = pd.DataFrame({"flag": [True, False] * 50, "when": pd.date_range("2020-01-01", periods=100, freq="D")})
    schema = infer_schema(raw)
    prepared = fit_encoding(raw, schema.modelled(), rho=1.0, delta=1e-9, noise=RandomSource.seeded(2),
                            histogram_sigma=5.0)
    encoding = prepared.encoding
    assert encoding.codecs[0].values == (False, True) and encoding.codecs[0].size == 2
    assert all(c.record["what"][1] == "when" for c in prepared.charges)
    decoded = encoding.decode(encoding.encode(raw), np.random.default_rng(0))
    assert decoded["flag"].equals(raw["flag"])
    assert str(decoded["when"].dtype) == str(raw["when"].dtype)


def test_declared_datetime_bounds_are_used():
    raw = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=50, freq="D")})
    column = dataclasses.replace(infer_schema(raw).modelled()[0],
                                 declared=Facts(min="2019-01-01", max="2021-12-31"))
    prepared = fit_encoding(raw, [column], rho=1.0, delta=1e-9, noise=RandomSource.seeded(2), binning="uniform")
    encoding = prepared.encoding
    assert prepared.charges == []
    decoded = encoding.decode(np.arange(encoding.sizes[0] - 1).repeat(20)[:, None], np.random.default_rng(0))
    assert decoded["when"].min() >= pd.Timestamp("2019-01-01") and decoded["when"].max() <= pd.Timestamp("2021-12-31")


def fit_digest(prepared) -> str:
    """A hash of everything a fit released: codecs, charges, one-way measurements."""
    metas, arrays = prepared.encoding.state()
    digest = hashlib.sha256(json.dumps([metas, [c.record for c in prepared.charges]], sort_keys=True).encode())
    for name in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    for name in sorted(prepared.one_way):
        digest.update(prepared.one_way[name].noisy.astype(np.int64).tobytes())
    return digest.hexdigest()


def test_a_seeded_fit_is_the_fit_of_the_one_scan_per_query_domain_step(fitted):
    """The digest was first computed before the domain step batched its count queries (one scan per query then):
    batching changes no count and draws the noise in the same order, so a seeded fit is byte-identical. It was
    re-pinned once, when each fine histogram gained a cell below and one above its range (two more noise draws
    per number column), with the batched path unchanged, and again when both bounds came from one noisy range
    histogram (issue 19) instead of an exponential mechanism per bound, and when a text column's category list
    gained its '(other)' value (issue 19: no noise draw changed, only the codec and its record), and when the
    range histogram's trimming changed (0ca517e), and when the fine cells followed the range histogram's mass and
    counted tail cells beyond the range (issue 19: the fine noise is now drawn after all ranges, since the number
    of fine cells depends on all of them)."""
    assert fit_digest(fitted[3]) == "b527c41a715689199f610767ac272b9a56e556c3fdc8fac5dd2a40f7e306688b"


class PassCounting(FrameCounts):
    """Records each batched query (domain_counts, code_counts; an engine answers each in one or two scans); a
    per-column query outside them would be a pass of its own."""

    def __init__(self, table):
        super().__init__(table)
        self.passes, self._inside = [], False

    def domain_counts(self, categories, buckets):
        self.passes.append(("domain", tuple(categories), tuple((c.name, side) for c, _, side in buckets)))
        self._inside = True
        try:
            return super().domain_counts(categories, buckets)
        finally:
            self._inside = False

    def category_counts(self, column):
        self.passes += [] if self._inside else [("category", column)]
        return super().category_counts(column)

    def bucket_counts(self, column, grid, side):
        self.passes += [] if self._inside else [("bucket", column.name)]
        return super().bucket_counts(column, grid, side)

    def code_counts(self, codecs, cliques):
        self.passes.append(("code", tuple(cliques)))
        return super().code_counts(codecs, cliques)


@pytest.mark.parametrize("binning", ["quantile", "uniform"])
def test_the_domain_step_asks_two_batched_queries_whatever_the_columns(binning):
    raw = people(1500).assign(unit=lambda t: np.random.default_rng(1).choice(["a", "b", "c"], len(t)),
                              score=lambda t: np.random.default_rng(2).normal(0, 1, len(t)).round(3))
    schema = infer_schema(raw).replace("gain", declared=Facts(min=0))
    counts = PassCounting(conform(raw, schema))
    prepared = fit_encoding(counts, schema.modelled(), rho=1.0, delta=1e-7, noise=RandomSource.seeded(4),
                            histogram_sigma=10.0, binning=binning)
    numbers = ["age", "pay", "gain", "seen", "score"]
    sides = [(n, "right") for n in numbers]  # one range histogram per column, whichever bounds are undeclared
    passes = [("domain", ("ward", "unit"), tuple(sides))]
    passes += [("code", tuple((n,) for n in numbers))] if binning == "quantile" else []
    assert counts.passes == passes
    assert len(prepared.charges) == 2 + len(sides) + (len(numbers) if binning == "quantile" else 0)


def test_zoned_times_count_as_local_wall_clock_seconds_and_decode_to_the_same_times_in_their_zone():
    from tabsynth.table.values import from_numbers, to_numbers

    local = pd.Series(pd.to_datetime(["2021-07-01 00:00", "2021-12-01 23:30", "2021-10-31 01:59", None]))
    when = local.dt.tz_localize("Europe/Berlin").rename("when")
    numbers = to_numbers("datetime", when)
    expected = ((local - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy(float)
    assert np.array_equal(numbers[:3], expected[:3]) and np.isnan(numbers[3])
    back = from_numbers("datetime", str(when.dtype), "when", numbers)
    pd.testing.assert_series_equal(back, when)
