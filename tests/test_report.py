"""Tests for tabsynth.publish.report: the self-contained HTML page a reviewer signs."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabsynth.metrics.fidelity import column_distances
from tabsynth.publish.plots import association_heatmaps, category_shares
from tabsynth.publish.report import fmt, render_report, write_report
from tabsynth.table.infer import conform, infer_schema

ADULT_CSV = Path(__file__).resolve().parent / "data" / "adult.csv.gz"
EVIL = "<script>alert(1)</script>"
SECTIONS = ["tabsynth release report", "Release gate", "Privacy summary", "Column fidelity",
            "Distributions: real vs synthetic", "Schema", "Reviewed by:"]
PNG_IMG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- realistic inputs

def mixed_table(n: int = 300, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, n).round(2)
    income[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n),
        "email": [f"user{i}.{rng.integers(1e6)}@example.org" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "income": income,
        "city": rng.choice(["Leeds", "York", "Bath", "Hull", "Ely"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
        "member": rng.random(n) < 0.3,
        "joined": pd.Timestamp("2020-01-01", tz="Europe/Berlin") + pd.to_timedelta(rng.integers(0, 1500, n), "D"),
        EVIL: rng.normal(0, 1, n) + 0.5 * rng.integers(18, 90, n),
    })


def shuffled(frame: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """A stand-in synthetic table: every column permuted on its own (marginals kept, links broken)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: frame[name].to_numpy()[rng.permutation(len(frame))] for name in frame.columns})


def distances(real: pd.DataFrame, synthetic: pd.DataFrame, schema) -> list[dict]:
    return [m.to_dict() for m in column_distances(real, synthetic, schema)]


def make_manifest(real: pd.DataFrame, synthetic: pd.DataFrame, schema, *, released: bool = True) -> dict:
    metrics = distances(real, synthetic, schema)
    metrics.append({"name": "exact_copy_rate", "value": 0.0, "goal": "min", "reads_private_rows": True,
                    "description": "share of synthetic rows equal to a training row", "details": {}})
    rules = [
        {"metric": "exact_copy_rate", "op": "<=", "threshold": 0.01, "value": 0.0, "passed": True, "reason": ""},
        {"metric": "mean_pair_tvd", "op": "<=", "threshold": 0.001, "value": 0.0123456, "passed": released,
         "reason": "" if released else "pairs of columns differ too much"},
    ]
    return {
        "tabsynth_version": "0.1.0", "created": "2026-11-26T12:00:00+00:00", "released": released,
        "input": {"path": "customers.csv", "sha256": "ab12" * 16, "format": "csv", "rows": len(real),
                  "columns": real.shape[1]},
        "split": {"train_rows": len(real), "holdout_rows": 75, "holdout_share": 0.2},
        "model": {"name": "copula", "params": {"max_knots": 1000}, "differentially_private": False,
                  "fit_seconds": 1.2},
        "sampling": {"rows": len(synthetic), "seconds": 0.3},
        "seed": {"value": 42, "reproducible": True, "note": "seed given by the user: results are reproducible"},
        "policy": {"name": "default", "description": "blocks copies & <b>tags</b>"},
        "gate": {"passed": released, "rules": rules},
        "metrics": metrics,
        "schema": schema.public(),
        "outputs": {"synthetic.parquet": {"sha256": "cd34" * 16, "rows": len(synthetic)}},
        "versions": {"python": "3.11.7", "numpy": np.__version__, "pandas": pd.__version__},
    }


@pytest.fixture(scope="module")
def mixed():
    raw = mixed_table()
    schema = infer_schema(raw)
    real = conform(raw, schema)
    synthetic = shuffled(real)
    return real, synthetic, schema


@pytest.fixture(scope="module")
def mixed_html(mixed) -> str:
    real, synthetic, schema = mixed
    return render_report(make_manifest(real, synthetic, schema), real, synthetic, schema)


def images(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in PNG_IMG.findall(html)]


# ---------------------------------------------------------------- the mixed table

def test_inferred_schema_has_every_kind(mixed):
    _, _, schema = mixed
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds["customer_id"] == "id" and kinds["email"] == "pii"
    assert {kinds["age"], kinds["income"], kinds["city"], kinds["member"], kinds["joined"]} == {
        "numerical", "categorical", "boolean", "datetime"}


def test_sections_appear_in_order(mixed_html):
    positions = [mixed_html.find(title) for title in SECTIONS]
    assert -1 not in positions
    assert positions == sorted(positions)


def test_one_png_per_modelled_column_plus_heatmap(mixed, mixed_html):
    _, _, schema = mixed
    pngs = images(mixed_html)
    assert len(pngs) == len(schema.modelled()) + 1
    assert all(png.startswith(PNG_MAGIC) for png in pngs)


def test_self_contained(mixed_html):
    assert "http://" not in mixed_html and "https://" not in mixed_html
    assert '<link' not in mixed_html and '<script' not in mixed_html


def test_gate_rules_and_verdicts(mixed):
    real, synthetic, schema = mixed
    html = render_report(make_manifest(real, synthetic, schema, released=False), real, synthetic, schema)
    gate = html[html.find("Release gate"):html.find("Privacy summary")]
    rows = re.findall(r"<tr>.*?</tr>", gate, flags=re.S)[1:3]
    assert "exact_copy_rate" in rows[0] and ">PASS<" in rows[0] and "&lt;= 0.01<" in rows[0]
    assert "mean_pair_tvd" in rows[1] and ">FAIL<" in rows[1] and "pairs of columns differ too much" in rows[1]
    assert ">0.01235<" in rows[1]  # value to 4 significant digits
    assert all("<td>yes</td>" in row for row in rows)  # both metrics read private rows


def test_privacy_summary_names_pii_and_ids(mixed_html):
    privacy = mixed_html[mixed_html.find("Privacy summary"):mixed_html.find("Column fidelity")]
    assert "email" in privacy and "replaced by fake values" in privacy
    assert "customer_id" in privacy and "regenerated" in privacy
    assert "results are reproducible" in privacy


def test_histogram_caption_states_missing_share(mixed, mixed_html):
    real, _, _ = mixed
    share = f"{real['income'].isna().mean():.1%}"
    assert real["income"].isna().any()
    assert f"missing: real {share}, synthetic {share}" in mixed_html


def test_fidelity_sorted_worst_first(mixed, mixed_html):
    real, synthetic, schema = mixed
    values = {m["name"]: m["value"] for m in distances(real, synthetic, schema)}
    section = mixed_html[mixed_html.find("Column fidelity"):mixed_html.find("Distributions:")]
    shown = [float(v) for v in re.findall(r'<td class="num">([0-9.e+-]+)</td>', section)]
    assert shown == sorted(shown, reverse=True)
    assert len(shown) == len(schema.modelled())
    assert fmt(values["mean_column_tvd"]) in section and fmt(values["mean_pair_tvd"]) in section


def test_data_text_is_escaped(mixed_html):
    assert EVIL not in mixed_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mixed_html
    assert "<b>tags</b>" not in mixed_html and "&lt;b&gt;tags&lt;/b&gt;" in mixed_html


def test_released_and_blocked_badges(mixed, mixed_html):
    real, synthetic, schema = mixed
    assert 'class="badge big pass">RELEASED<' in mixed_html and "FAIL" not in mixed_html
    html = render_report(make_manifest(real, synthetic, schema, released=False), real, synthetic, schema)
    assert 'class="badge big fail">BLOCKED<' in html
    assert "RELEASED" not in html


def test_empty_manifest_renders(mixed):
    real, synthetic, schema = mixed
    html = render_report({}, real, synthetic, schema)
    assert "NOT RECORDED" in html and "No gate rules were recorded" in html
    assert len(images(html)) == len(schema.modelled()) + 1


@pytest.mark.slow
def test_partial_manifest_renders(mixed):
    real, synthetic, schema = mixed
    manifest = {"released": True, "gate": {"rules": [{"metric": "x"}, "junk"]}, "metrics": None, "input": []}
    html = render_report(manifest, real, synthetic, schema)
    assert "RELEASED" in html and "n/a" in html


def test_dropped_pii_column_absent_from_synthetic(mixed):
    real, synthetic, schema = mixed
    schema = schema.replace("email", handling="drop")
    html = render_report({}, real, synthetic.drop(columns="email"), schema)
    assert "dropped from the release" in html


def test_modelled_column_missing_from_synthetic_is_named(mixed):
    real, synthetic, schema = mixed
    html = render_report({}, real, synthetic.drop(columns="city"), schema)
    assert "missing from the real or synthetic table: <code>city</code>" in html
    assert len(images(html)) == len(schema.modelled())  # city's plot is gone, the heatmap stays


def test_write_report(tmp_path, mixed):
    real, synthetic, schema = mixed
    path = tmp_path / "out" / "report.html"
    write_report(path, make_manifest(real, synthetic, schema), real, synthetic, schema)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "Reviewed by:" in text
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


# ---------------------------------------------------------------- plot data

def test_category_shares_counts_missing_and_other():
    real = pd.Series(["a"] * 5 + ["b"] * 3 + [None] * 2)
    synthetic = pd.Series(["a"] * 2 + ["b"] * 8)
    shares = category_shares(real, synthetic)
    assert list(shares.index) == ["a", "b", "(missing)"]
    assert shares.loc["a"].tolist() == [0.5, 0.2] and shares.loc["(missing)"].tolist() == [0.2, 0.0]
    many = pd.Series([f"c{i}" for i in range(20)] * 2)
    assert category_shares(many, many).index[-1] == "(other)"


def test_association_heatmaps_need_two_columns(mixed):
    real, synthetic, schema = mixed
    assert association_heatmaps(real, synthetic, schema.modelled()[:1]) is None
    assert base64.b64decode(association_heatmaps(real, synthetic, schema.modelled())).startswith(PNG_MAGIC)


# ---------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def adult():
    raw = pd.read_csv(ADULT_CSV, na_values=["?"], nrows=2000)
    schema = infer_schema(raw)
    real = conform(raw, schema)
    return real, shuffled(real), schema


@pytest.mark.slow
def test_adult_report(adult):
    real, synthetic, schema = adult
    manifest = make_manifest(real, synthetic, schema)
    html = render_report(manifest, real, synthetic, schema)
    assert len(images(html)) == len(schema.modelled()) + 1
    assert "native-country" in html and "(missing)" not in html  # labels live inside the PNGs only


@pytest.mark.slow
def test_many_columns_are_capped(adult):
    real, synthetic, schema = adult
    wide_real = pd.concat([real.add_suffix(f"_{i}") for i in range(3)], axis=1)
    wide_synth = pd.concat([synthetic.add_suffix(f"_{i}") for i in range(3)], axis=1)
    wide_schema = infer_schema(wide_real)
    html = render_report({}, wide_real, wide_synth, wide_schema)
    assert len(images(html)) == 40 + 1
    assert "5 more modelled columns left out" in html


# ---------------------------------------------------------------- DP budget and a real browser

def dp_manifest(real, synthetic, schema) -> dict:
    manifest = make_manifest(real, synthetic, schema)
    manifest["model"]["differentially_private"] = True
    manifest["privacy"] = {
        "differentially_private": True, "epsilon": 0.9987, "delta": 1e-9, "accounting": "zCDP, tight conversion",
        "measurements": [{"what": ["age"], "sigma": 12.5, "rho": 0.0032}, {"what": ["age", "city"], "sigma": 8.25,
                                                                           "rho": 0.0073}],
        "noise": {"note": "operating-system entropy"},
        "ledger": {"source": "sha256:abc", "source_spent": {"epsilon": 2.0, "delta": 2e-9},
                   "source_cap": {"epsilon": 3.0, "delta": 1e-5}}}
    return manifest


def dp_assessment(real, synthetic, schema) -> dict:
    """The internal-only assessment of a DP release: the checks that read private rows, and their rules."""
    return {"input": {"path": "customers.csv", "sha256": "ab12" * 16, "rows": len(real), "columns": real.shape[1]},
            "split": {"train_rows": len(real), "holdout_rows": 75}, "timings": {"fit_seconds": 1.2},
            "metrics": distances(real, synthetic, schema),
            "gate": {"status": "internal assessment, not part of the release decision",
                     "rules": [{"metric": "mean_pair_tvd", "op": "<=", "threshold": 0.001, "value": 0.0123456,
                                "passed": False, "reason": "pairs of columns differ too much"}]}}


def test_dp_budget_is_shown(mixed):
    real, synthetic, schema = mixed
    html = render_report(dp_manifest(real, synthetic, schema), real, synthetic, schema)
    privacy = html[html.find("Privacy summary"):html.find("<h2>Comparisons with the private table")]
    for fragment in ("0.9987", "1e-09", "zCDP, tight conversion", "2 noisy measurements", "age, city", "σ = 8.25",
                     "sha256:abc", "spent so far ε 2"):
        assert fragment in privacy, fragment
    assert "Nothing here was computed from the private rows" in html


def test_a_dp_release_shareable_report_shows_no_private_figure(mixed):
    """No real-vs-synthetic plot, no private-row metric, no input hash or row count; the internal view has them."""
    real, synthetic, schema = mixed
    manifest = dp_manifest(real, synthetic, schema)
    for key in ("sha256", "rows"):
        manifest["input"].pop(key)
    manifest["split"] = {"holdout_share": 0.2}
    manifest["metrics"] = [m for m in manifest["metrics"] if not m["reads_private_rows"]]
    shared = render_report(manifest, real, synthetic, schema)
    assert not images(shared) and "tvd:" not in shared and "<h2>Column fidelity" not in shared
    assert "withheld" in shared and "Training rows" not in shared and "real (train)" not in shared
    internal = render_report(manifest, real, synthetic, schema, dp_assessment(real, synthetic, schema))
    assert "INTERNAL REVIEW ONLY" in internal and "ab12" * 16 in internal and "Training rows" in internal
    assert len(images(internal)) == len(schema.modelled()) + 1 and "pairs of columns differ too much" in internal
    assert "not covered by the differential-privacy guarantee" in internal


def _chromium() -> str | None:
    import os
    import shutil

    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if found is None and os.environ.get("CI"):
        pytest.fail("headless Chromium is required in CI (apt-get install chromium)")
    return found


def _pixels_near(image: np.ndarray, hex_color: str, tolerance: int = 30) -> int:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image[..., :3].astype(int) - rgb).max(axis=-1) < tolerance).sum())


@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path, mixed):
    import subprocess

    from matplotlib.image import imread

    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine")
    real, synthetic, schema = mixed
    page = tmp_path / "report.html"
    write_report(page, dp_manifest(real, synthetic, schema), real, synthetic, schema,
                 dp_assessment(real, synthetic, schema))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<img") == len(schema.modelled()) + 1 and "Release gate" in dom and "PASS" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1200,5000", f"--screenshot={shot}", page.as_uri()], capture_output=True,
                   timeout=120)
    image = (imread(shot) * 255).astype(np.uint8)
    assert _pixels_near(image, "#1e7b34") > 200, "the green PASS badges of the gate table are drawn"
    assert _pixels_near(image, "#dd6b20") > 200, "the orange synthetic lines and bars of the plots are drawn"
