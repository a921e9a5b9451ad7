"""A DP release's gate and shareable files: the decision reads only DP or public inputs, and manifest.json and
report.html hold only DP or public figures; what read the private rows is in internal/, never exported."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from tabsynth.io.files import file_sha256
from tabsynth.publish.gate import DP_DECISION_METRICS, INTERNAL_ONLY
from tabsynth.publish.review import VerificationError, approve, export, verify
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.release import release


@pytest.fixture(scope="module")
def few_values(tmp_path_factory):
    """Three low-cardinality columns: nearly every synthetic row equals some training row, so the strict
    policy's `exact_copy_rate <= 0` fails on any model, DP or not."""
    rng = np.random.default_rng(5)
    n = 1500
    path = tmp_path_factory.mktemp("few") / "few.csv"
    pd.DataFrame({"sex": rng.choice(["F", "M"], n), "stage": rng.choice(["I", "II", "III"], n),
                  "smoker": rng.choice(["yes", "no"], n)}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def strict_release(few_values, tmp_path_factory):
    folder = tmp_path_factory.mktemp("strict")
    result = release(ReleaseOptions(data=few_values, out=folder / "rel", model="dp-marginal", epsilon=1.0,
                                    delta=1e-7, policy="strict-external-sharing", source_id="few",
                                    ledger=f"sqlite:///{folder / 'ledger.db'}"))
    internal = json.loads((result.out / "internal" / "assessment.json").read_text())
    return result, internal


def test_private_row_checks_cannot_block_a_dp_release(strict_release):
    result, internal = strict_release
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["released"] and result.verdict.passed
    decided = {rule["metric"] for rule in manifest["gate"]["rules"]}
    assert decided == {"dp_epsilon", "constraint_violations"} and decided <= DP_DECISION_METRICS
    assert "exact_copy_rate <= 0" in manifest["gate"]["internal_assessment_rules"]["rules"]
    assert manifest["gate"]["internal_assessment_rules"]["status"] == INTERNAL_ONLY
    assert "differentially private or public inputs" in manifest["gate"]["basis"]
    copies = {rule["metric"]: rule for rule in internal["gate"]["rules"]}["exact_copy_rate"]
    assert not copies["passed"] and copies["value"] > 0  # the failure is recorded, internally
    assert internal["gate"]["status"] == INTERNAL_ONLY


def test_a_dp_release_shares_no_figure_of_the_private_rows(strict_release, few_values):
    result, internal = strict_release
    text = (result.out / "manifest.json").read_text()
    manifest = json.loads(text)
    report = (result.out / "report.html").read_text()
    digest = file_sha256(few_values)
    assert digest not in text and digest not in report and "sha256" not in manifest["input"]
    assert not {"rows", "train_rows", "holdout_rows"} & (manifest["input"].keys() | manifest["split"].keys())
    assert "fit_seconds" not in manifest["model"] and "checks_reading_private_rows" not in manifest
    assert all(not m["reads_private_rows"] for m in manifest["metrics"])
    private = [m for m in internal["metrics"] if m["details"]]
    assert {"exact_copy_rate", "dcr_share", "mia_auc", "correlation_difference"} <= {m["name"] for m in private}
    for metric in private:  # DCR percentiles, attack rates, correlations: only in the internal file
        assert json.dumps(metric["details"]) not in text, metric["name"]
    assert "<img" not in report and "Training rows" not in report  # no real-vs-synthetic plot, no count
    assert "The decision was based on" in report and INTERNAL_ONLY in report
    assert internal["input"]["sha256"] == digest
    assert internal["split"]["train_rows"] + internal["split"]["holdout_rows"] == internal["input"]["rows"] == 1500
    assert "<img" in (result.out / "internal" / "report.html").read_text()


def test_the_exported_data_card_of_a_dp_release_holds_no_private_figure(strict_release, few_values, tmp_path):
    result, internal = strict_release
    folder = tmp_path / "rel"
    shutil.copytree(result.out, folder)
    approve(folder, "Ada Byron")
    export(folder, tmp_path / "shared")
    card = (tmp_path / "shared" / "DATA_CARD.md").read_text()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "| Reviewer sign-off | Ada Byron on " in card
    assert "ε = 1," in card and "adding or removing one row" in card and "dp-marginal" in card
    assert f"{manifest['outputs']['synthetic.parquet']['rows']:,} (a differentially private noisy count)" in card
    assert "dp_epsilon = 1, policy requires <= " in card  # the deciding rules read only DP or public inputs
    figures = [f"{r['value']:.4g}" for r in internal["gate"]["rules"] if r["value"] is not None]
    private = [internal["input"]["sha256"], f"{internal['input']['rows']:,}", f"{internal['split']['train_rows']:,}",
               few_values.name, *(f for f in figures if len(f) >= 4)]  # '0' or '1' would match anything
    # The noisy row count may equal the true one by chance (its noise is a few rows): that line is DP output.
    rest = "\n".join(line for line in card.splitlines() if "a differentially private noisy count" not in line)
    assert len(private) > 4 and not [figure for figure in private if figure in rest]
    assert "exact_copy_rate" not in card and "internal" in card


def test_verify_approve_and_export_work_and_leave_internal_files_behind(strict_release, tmp_path):
    result, _ = strict_release
    folder, shared = tmp_path / "rel", tmp_path / "shared"
    shutil.copytree(result.out, folder)
    shared.mkdir()
    verify(folder)
    approve(folder, "Ada Byron (reviewer)")
    assert export(folder, shared).name == "synthetic.parquet" and sorted(p.name for p in shared.iterdir()) == [
        "DATA_CARD.md", "synthetic.parquet"]
    assessment = folder / "internal" / "assessment.json"
    assessment.write_text(re.sub(r'"manifest_sha256": "\w+"', '"manifest_sha256": "0"', assessment.read_text()))
    with pytest.raises(VerificationError, match="another manifest"):
        verify(folder)
