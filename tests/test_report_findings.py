"""The report's findings: long-tailed columns' axes, the verdict paragraph, itemised failures, warnings, the
target's classes, the validation report's title, and the committed Chromium screenshots of three real reports."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import (
    PNG_MAGIC,
    _chromium,
    _pixels_near,
    dp_assessment,
    dp_manifest,
    make_manifest,
    mixed_table,
    shuffled,
)

from tabsynth.publish.report import render_report, write_report
from tabsynth.table.infer import conform, infer_schema


@pytest.fixture(scope="module")
def mixed():
    raw = mixed_table()
    schema = infer_schema(raw)
    real = conform(raw, schema)
    return real, shuffled(real), schema


def test_long_tailed_numbers_get_a_log_or_quantile_axis():
    from tabsynth.publish.plots import axis_for, column_plot
    from tabsynth.table.schema import Column

    rng = np.random.default_rng(3)
    number = Column("x", "numerical", "float64")
    amounts = rng.lognormal(3, 2.0, 2000)  # positive, over five powers of ten: log
    gains = np.where(rng.random(2000) < 0.9, 0.0, rng.lognormal(8, 1, 2000))  # mostly 0, long tail: quantile
    assert axis_for(amounts, number) == "log" and axis_for(gains, number) == "quantile"
    assert axis_for(rng.normal(50, 10, 2000), number) == "linear"
    assert axis_for(rng.uniform(1, 10_000, 2000), number) == "linear"  # wide but not tailed
    assert axis_for(-amounts, number) == "quantile"  # negative: no log axis
    assert axis_for(amounts, Column("d", "datetime", "datetime64[ns]")) == "linear"
    plot = column_plot(number, pd.Series(amounts), pd.Series(amounts[::-1]))
    assert plot.axis == "log scale" and base64.b64decode(plot.png).startswith(PNG_MAGIC)
    assert column_plot(number, pd.Series(gains), pd.Series(gains)).axis == "quantile bins, value 0 apart"
    spread = np.where(gains > 0, gains ** 2, 0.0)  # the values other than 0 now span over five powers of ten
    assert column_plot(number, pd.Series(spread), pd.Series(spread)).axis == "log scale, value 0 apart"


@pytest.mark.slow
def test_a_long_tailed_column_is_captioned_with_its_axis(mixed):
    real, synthetic, schema = mixed
    real = real.assign(income=real["income"] ** 3)  # lognormal, now over several powers of ten
    html = render_report({}, real, shuffled(real), schema)
    caption = re.search(r"<figcaption>income <span>([^<]*)</span>", html).group(1)
    assert "log scale" in caption and "missing: real" in caption
    assert "quantile" not in re.search(r"<figcaption>age <span>([^<]*)</span>", html).group(1)


@pytest.fixture(scope="module")
def narrow(mixed):
    """The mixed table's key, e-mail, age and city only: quick to render where the plots are not the point."""
    from tabsynth.table.schema import Schema

    real, synthetic, schema = mixed
    names = ["customer_id", "email", "age", "city"]
    return real[names], synthetic[names], Schema(tuple(c for c in schema.columns if c.name in names))


def _verdict(html: str) -> str:
    return re.search(r'<p class="verdict [a-z]+">(.*?)</p>', html, flags=re.S).group(1)


def test_verdict_of_a_passed_release_states_what_the_manifest_records(narrow):
    real, synthetic, schema = narrow
    verdict = _verdict(render_report(make_manifest(real, synthetic, schema), real, synthetic, schema))
    assert f"This release holds {len(synthetic):,} synthetic rows in synthetic.parquet, made by model copula." \
        in verdict
    assert "Under policy default, all 2 rules passed." in verdict
    assert "not differentially private: no formal privacy guarantee applies" in verdict
    assert "rules on checks against the real rows (exact_copy_rate and mean_pair_tvd)" in verdict
    assert "Personal data columns: email (replaced by fake values)." in verdict
    assert "Key columns regenerated as new keys: customer_id." in verdict
    assert "The reviewer must still check that the schema marks every column holding personal data" in verdict
    assert "failed rule" not in verdict and "warning" not in verdict  # none recorded, so none claimed
    assert "ε" not in verdict and "signoff" not in verdict


def test_verdict_of_a_blocked_release_names_the_failed_rules(narrow):
    real, synthetic, schema = narrow
    manifest = make_manifest(real, synthetic, schema, released=False)
    manifest["model"].update(chosen_by="auto", why="the table is small")
    verdict = _verdict(render_report(manifest, real, synthetic, schema))
    assert verdict.startswith(f"Nothing was released: the gate blocked the {len(synthetic):,} synthetic rows made "
                              "by model copula (chosen automatically: the table is small).")
    assert "1 of 2 rules failed (mean_pair_tvd)" in verdict and "each failed rule listed below" in verdict


def test_verdict_of_a_dp_release_states_the_guarantee(narrow):
    real, synthetic, schema = narrow
    manifest = dp_manifest(real, synthetic, schema)
    manifest["metrics"] = [m for m in manifest["metrics"] if not m["reads_private_rows"]]
    manifest["gate"] = {"passed": True, "rules": [{"metric": "dp_epsilon", "op": "<=", "threshold": 1.0,
                                                   "value": 0.9987, "passed": True}],
                        "internal_assessment_rules": {"rules": ["exact_copy_rate <= 0.01"], "status": "internal"}}
    manifest["schema_facts"] = {"columns": {"age": {"facts": "declared in the schema file"},
                                            "city": {"facts": "measured with DP (noisy counts of value classes)"}}}
    verdict = _verdict(render_report(manifest, real, synthetic, schema))
    assert "differentially private with ε = 0.9987 and δ = 1e-09, where neighbouring tables differ by adding or " \
           "removing one row" in verdict
    assert "the decision read only differentially private or public inputs: all 1 rule passed" in verdict
    assert "their outcomes are for internal review only" in verdict and "this report" in verdict
    assert "facts declared in the schema file for age are public knowledge" in verdict and "city are" not in verdict
    assert "that ε = 0.9987 suits this data" in verdict and "without a formal privacy guarantee" not in verdict
    internal = render_report(manifest, real, synthetic, schema, dp_assessment(real, synthetic, schema))
    assert "in the internal assessment 1 of 1 failed (mean_pair_tvd)" in _verdict(internal)


def test_failed_rules_and_constraints_are_itemised(narrow):
    real, synthetic, schema = narrow
    manifest = make_manifest(real, synthetic, schema, released=False)
    expectations = [{"rule": "age between 18 and 89", "passed": False, "unexpected_count": 7},
                    {"rule": "city among the schema categories", "passed": True, "unexpected_count": 0},
                    {"rule": "customer_id unique", "passed": False, "error": "column 'customer_id' is missing"}]
    manifest["metrics"] += [
        {"name": "constraint_violations", "value": 2.0, "details": {"expectations": expectations}},
        {"name": "pii_leak", "value": 3.0, "details": {"pii_columns": {"email": 3}, "other_columns": {}}}]
    manifest["gate"]["rules"] += [
        {"metric": "constraint_violations", "op": "<=", "threshold": 0, "value": 2.0, "passed": False,
         "reason": "every schema fact and constraint must hold"},
        {"metric": "pii_leak", "op": "<=", "threshold": 0, "value": 3.0, "passed": False, "reason": "no real PII"},
        {"metric": "check_error:utility", "op": "runs", "threshold": 0, "value": None, "passed": False,
         "reason": "the utility check failed to run (ValueError: boom); fails closed"}]
    html = render_report(manifest, real, synthetic, schema)
    failed = html[html.find("<h2>What failed"):html.find("<h2>Privacy summary")]
    items = [re.sub(r"<[^>]+>|\s+", " ", li.split("</li>")[0]).strip() for li in failed.split("<li>")[1:]]
    assert "constraint age between 18 and 89: 7 rows fail" in items
    assert "constraint customer_id unique: column &#39;customer_id&#39; is missing" in items
    assert "PII column &#39;email&#39;: 3 synthetic values equal a real value of the column" in items
    assert not [i for i in items if "city among" in i]  # a constraint that held is not listed
    assert "mean_pair_tvd = 0.01235, policy requires &lt;= 0.001: pairs of columns differ too much" in failed
    assert "the utility check failed to run (ValueError: boom); fails closed" in failed
    assert "<h2>What failed" not in render_report(make_manifest(real, synthetic, schema), real, synthetic, schema)


def test_warnings_section_lists_what_the_run_recorded(narrow):
    real, synthetic, schema = narrow
    manifest = make_manifest(real, synthetic, schema)
    manifest["warnings"] = ["income: about 4% of its values lie outside the range 0 to 90,000 chosen with DP and "
                            "were clipped into it; declare min and max in the schema file to keep them"]
    manifest["sampling"]["rejected_by_constraints"] = 25
    manifest["schema"] = schema.replace("email", handling="drop").public()
    manifest["metrics"].append({"name": "constraint_violations", "value": 1.0, "details": {"expectations": [
        {"rule": "age between 18 and 89", "passed": False, "unexpected_count": 2}]}})
    html = render_report(manifest, real, synthetic.drop(columns="email"), schema.replace("email", handling="drop"))
    section = html[html.find("<h2>Warnings"):html.find("<h2>Privacy summary")]
    warnings = re.findall(r"<li>(.*?)</li>", section, flags=re.S)
    assert len(warnings) == 4 and "clipped into it" in warnings[0]
    assert f"25 sampled rows (7.7% of the {25 + len(synthetic):,} drawn) broke a schema fact" in warnings[1]
    assert "column &#39;email&#39; (email) was dropped as personal data" in warnings[2]
    assert "constraint age between 18 and 89: 2 rows fail (no rule of the policy blocks on it)" in warnings[3]
    assert "the 4 warnings below" in _verdict(html)
    assert "<h2>Warnings" not in render_report(make_manifest(real, synthetic, schema), real, synthetic, schema)


def _with_target(manifest: dict, target: str) -> dict:
    manifest["metrics"].append({"name": "tstr_auc", "value": 0.8, "reads_private_rows": True,
                                "details": {"target": target}})
    return manifest


@pytest.mark.slow
def test_per_class_view_of_the_target(narrow):
    real, synthetic, schema = narrow
    synthetic = synthetic.assign(age=np.where(synthetic["city"] == "Ely", 89, synthetic["age"]))  # Ely's ages off
    html = render_report(_with_target(make_manifest(real, synthetic, schema), "city"), real, synthetic, schema)
    section = html[html.find("<h2>Target classes"):html.find("<h2>Distributions")]
    rows = re.findall(r"<tr><td><code>(.*?)</code></td>(.*?)</tr>", section, flags=re.S)
    assert [label for label, _ in rows] == list(real["city"].value_counts().index)
    cells = {label: re.findall(r"<td[^>]*>(.*?)</td>", rest) for label, rest in rows}
    assert cells["Leeds"][0] == f"{(real['city'] == 'Leeds').mean():.1%}"
    assert cells["Leeds"][1] == f"{(synthetic['city'] == 'Leeds').mean():.1%}"
    assert cells["Ely"][3].startswith("age (") and float(cells["Ely"][2]) > float(cells["Leeds"][2])
    assert "<h2>Target classes" not in render_report(make_manifest(real, synthetic, schema), real, synthetic, schema)


def test_per_class_view_is_never_in_a_dp_shareable_report(narrow):
    real, synthetic, schema = narrow
    manifest = _with_target(dp_manifest(real, synthetic, schema), "city")
    assert "<h2>Target classes" not in render_report(manifest, real, synthetic, schema)
    internal = render_report(manifest, real, synthetic, schema, dp_assessment(real, synthetic, schema))
    assert "<h2>Target classes" in internal


@pytest.mark.slow
def test_a_validation_report_is_titled_as_one(narrow):
    real, synthetic, schema = narrow
    manifest = {**make_manifest(real, synthetic, schema, released=False), "kind": "validation",
                "model": {"name": "made elsewhere", "differentially_private": None}}
    manifest["input"]["synthetic"] = "theirs.csv"
    html = render_report(manifest, real, synthetic, schema)
    assert "<title>tabsynth validation report" in html and "<h1>tabsynth validation report</h1>" in html
    assert "release report" not in html and ">FAILED<" in html and "BLOCKED" not in html
    assert _verdict(html).startswith("The synthetic table theirs.csv, made elsewhere, was checked against the real "
                                     "table customers.csv; a validation releases nothing.")
    assert "Whether the synthetic table is differentially private is not known to tabsynth." in _verdict(html)


# ---------------------------------------- the committed screenshots (benchmarks/report_screenshots.py)

SCREENSHOTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
PASS_GREEN, FAIL_RED, SYNTH_ORANGE = "#1e7b34", "#c53030", "#dd6b20"


@pytest.mark.parametrize("kind, badge, other, plots", [("passed", PASS_GREEN, FAIL_RED, True),
                                                       ("blocked", FAIL_RED, None, True),
                                                       ("dp", PASS_GREEN, FAIL_RED, False)])
def test_committed_screenshots_show_each_kind_of_report(kind, badge, other, plots):
    """A real passed, blocked and DP release's report as Chromium drew it: not blank, the right badge, real vs
    synthetic plots in the non-DP reports and none in the DP release's shareable report."""
    from matplotlib.image import imread

    image = (imread(SCREENSHOTS / f"report_{kind}.png")[..., :3] * 255).astype(np.uint8)
    assert image.shape[1] == 1200 and image.shape[0] >= 1500
    assert image.std() > 20 and (image < 100).mean() > 0.005, "text is drawn on the page"
    assert _pixels_near(image, badge, 20) > 2000, "the big RELEASED / BLOCKED badge"
    if other:
        assert _pixels_near(image, other, 20) < 100
    assert (_pixels_near(image, SYNTH_ORANGE, 20) > 300) == plots


@pytest.mark.slow
def test_blocked_report_dom_in_headless_chromium(tmp_path, narrow):
    """Chromium parses the verdict and the itemised failures as written (no markup broken by the data)."""
    import subprocess

    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine")
    real, synthetic, schema = narrow
    manifest = make_manifest(real, synthetic, schema, released=False)
    manifest["metrics"].append({"name": "pii_leak", "value": 2.0, "details": {"pii_columns": {"email": 2}}})
    manifest["gate"]["rules"].append({"metric": "pii_leak", "op": "<=", "threshold": 0, "value": 2.0,
                                      "passed": False, "reason": "no real PII"})
    page = tmp_path / "blocked.html"
    write_report(page, manifest, real, synthetic, schema)
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    verdict = re.search(r'<p class="verdict fail">(.*?)</p>', dom, flags=re.S).group(1)
    assert verdict.startswith("Nothing was released") and "2 of 3 rules failed (mean_pair_tvd and pii_leak)" in verdict
    failed = dom[dom.find("<h2>What failed"):dom.find("<h2>Privacy summary")]
    assert failed.count("<li>") == 3 and "PII column 'email': 2 synthetic values equal a real value" in failed
