"""Categories too rare to keep at a DP budget (issue 19): in a text column they are merged into one '(other)'
value, apart from the missing values, and the steward is told what share of rows that is (a DP estimate);
other columns keep writing them as missing. No extra measurement: one row still lands in one cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabsynth.models.dp_marginal import DPMarginal
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.facts import dp_schema
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.privacy.preprocess import category_warnings, fit_encoding
from tabsynth.table.codecs import OTHER, CategoryCodec, Encoding
from tabsynth.table.schema import Schema

SHARES = [.5, .2, .1, .1, .04, .02, .01, .01, .01, .01]


def _codes(rows: int = 3000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"code": rng.choice(list("ABCDEFGHIJ"), rows, p=SHARES),
                          "grade": rng.choice(np.arange(1, 11), rows, p=SHARES),
                          "age": rng.integers(20, 80, rows)})
    table.loc[:99, "code"] = None
    return table


def _schema(declared: tuple | None = None) -> Schema:
    code = {"name": "code", "kind": "categorical", "dtype": "object", "nullable": True}
    return Schema.from_dict({"columns": [code | ({"declared": {"categories": list(declared)}} if declared else {}),
                                         {"name": "grade", "kind": "categorical", "dtype": "int64", "nullable": False},
                                         {"name": "age", "kind": "numerical", "dtype": "int64", "nullable": False,
                                          "declared": {"min": 0, "max": 100}}]})


def test_the_other_cell_holds_unreleased_values_apart_from_missing_ones():
    codec = CategoryCodec("code", "object", ("A", "B", OTHER), True, True)
    series = pd.Series(["A", "Z", None, "B", "Q", OTHER, np.nan], dtype=object)
    assert codec.size == 4
    assert codec.encode(series).tolist() == [0, 2, 3, 1, 2, 2, 3]
    decoded = codec.decode(np.array([0, 2, 3]), np.random.default_rng(0))
    assert decoded.iloc[:2].tolist() == ["A", OTHER] and pd.isna(decoded.iloc[2])
    strict = CategoryCodec("code", "object", ("A", OTHER), False, True)
    assert strict.encode(series).tolist() == [0, 1, 1, 1, 1, 1, 1], "without a missing cell, gaps join the other cell"
    assert CategoryCodec("code", "object", ("A", "B"), True).encode(series).tolist() == [0, 2, 2, 1, 2, 2, 2]
    metas, arrays = Encoding((codec,)).state()
    assert Encoding.from_state(metas, arrays).codecs[0] == codec
    del metas[0]["other"]  # a model file written before the other cell
    assert Encoding.from_state(metas, arrays).codecs[0].other is False


def test_one_row_still_changes_one_cell_by_one():
    """The histograms a DP model measures over the codes keep sensitivity 1 with the other cell: the cell count
    is public (it does not depend on what was dropped) and any added row lands in exactly one cell."""
    codec = CategoryCodec("code", "object", ("A", "B", OTHER), True, True)
    table = pd.Series(["A", "B", "Z", None, OTHER] * 20, dtype=object)
    base = np.bincount(codec.encode(table), minlength=codec.size)
    for row in ["A", "rare", None, OTHER, ""]:
        grown = np.bincount(codec.encode(pd.concat([table, pd.Series([row], dtype=object)])), minlength=codec.size)
        assert np.abs(grown - base).sum() == 1, row


def test_only_measured_text_columns_get_the_other_cell_and_it_costs_nothing_more():
    table = _codes()
    fits = {name: fit_encoding(table, _schema(declared).modelled(), rho=0.05, delta=1e-9,
                               noise=RandomSource.seeded(5), histogram_sigma=20.0)
            for name, declared in (("measured", None), ("declared", tuple("ABCDEFGHIJ")))}
    code, grade, _ = fits["measured"].encoding.codecs
    assert code.other and code.values[-1] == OTHER and set(code.values[:-1]) < set("ABCDEFGHIJ")
    assert not grade.other and OTHER not in grade.values, "numbers coded as categories keep the missing cell"
    assert not fits["declared"].encoding.codecs[0].other, "a declared category list has nothing to merge"
    [record] = [c.record for c in fits["measured"].charges if c.record["what"] == ["categories", "code"]]
    assert record["released"] == len(code.values) - 1 and record["other"] == OTHER
    assert sum(c.rho for c in fits["measured"].charges if c.record["what"][0] != "marginal") == pytest.approx(0.05)
    assert sum(c.delta for c in fits["measured"].charges) == pytest.approx(1e-9)


def test_the_other_cell_is_there_even_when_nothing_was_dropped():
    """Whether a category was dropped depends on the private rows (one row of a new category drops one), so
    the other cell's presence may not: a measured text column always has it, and the warning (a DP estimate
    of its share) says whether it holds much."""
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"code": rng.choice(list("AB"), 4000), "grade": 1, "age": 30})
    prepared = fit_encoding(table, _schema().modelled(), rho=1.0, delta=1e-9, noise=RandomSource.seeded(1),
                            histogram_sigma=5.0)
    code = prepared.encoding.codecs[0]
    assert code.values == ("A", "B", OTHER)
    noisy = np.bincount(code.encode(table["code"]), minlength=code.size) + np.array([3, -2, 4, 1])
    assert category_warnings(_schema().modelled()[:1], [code], [noisy]) == []


def test_dp_marginal_writes_other_apart_from_missing_and_says_how_much(tmp_path):
    table = _codes()
    schema, _, _ = dp_schema(table, None, rho=0.001, noise=RandomSource.system())
    model = DPMarginal().fit(table, schema, budget=Budget(1.0, 1e-9, RandomSource.system()))
    [warning] = [w for w in model.privacy_["warnings"] if w.startswith("code: ")]
    assert "merged into '(other)'" in warning and "DP estimate" in warning
    share = float(warning.split("about ")[1].split("%")[0]) / 100
    merged = (table["code"].notna() & ~table["code"].isin(model.encoding_.codecs[0].values)).mean()
    assert merged > 0.05 and share == pytest.approx(merged, abs=0.04)  # the rows of the rare ones, not the gaps
    synthetic = model.sample(4000, rng=0)["code"]
    assert (synthetic == OTHER).mean() == pytest.approx(share, abs=0.03)
    assert synthetic.isna().mean() == pytest.approx(100 / 3000, abs=0.02), "missing values stay missing"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "params"), [("dp-marginal", {}), ("dp-argn", {"epochs": 2})])
def test_conditions_on_other_are_met(tmp_path, name, params):
    """By rejection (dp-marginal) and by dp-argn's token limits."""
    from tabsynth import Synthesizer

    synth = Synthesizer(name, **params).fit(_codes(), epsilon=1.0, ledger=f"sqlite:///{tmp_path}/l.db",
                                            progress=False)
    rows = synth.sample(50, where="code == '(other)'", seed=0)
    assert len(rows) == 50 and (rows["code"] == OTHER).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dp-argn", "dp-ctgan"])
def test_the_networks_write_other_and_say_how_much(name):
    from tabsynth.models.base import create_model

    table = _codes()
    model = create_model(name, epochs=2).fit(table, _schema(), budget=Budget(1.0, 1e-9, RandomSource.system()), rng=0)
    assert any(w.startswith("code: ") and "merged into '(other)'" in w for w in model.privacy_["warnings"])
    assert not any(w.startswith("grade: ") and "(other)" in w for w in model.privacy_["warnings"])
    synthetic = model.sample(2000, rng=0)
    assert (synthetic["code"] == OTHER).any() and not (synthetic["grade"].astype(str) == OTHER).any()


@pytest.mark.slow
def test_a_release_shows_the_merge_in_its_manifest_and_report(tmp_path):
    from tabsynth.run.options import ReleaseOptions
    from tabsynth.run.release import release

    _codes().to_parquet(tmp_path / "t.parquet")
    result = release(ReleaseOptions(data=tmp_path / "t.parquet", out=tmp_path / "out", model="dp-marginal",
                                    epsilon=1.0, ledger=f"sqlite:///{tmp_path}/l.db"))
    [warning] = [w for w in result.manifest["warnings"] if w.startswith("code: ")]
    assert "merged into '(other)'" in warning
    assert "merged into &#39;(other)&#39; (about" in (tmp_path / "out" / "report.html").read_text()
    assert (result.synthetic["code"] == OTHER).any()
