"""The gate as a compliance reviewer relies on it: every failing rule named, nothing written, fail closed."""

import numpy as np
import pytest

from tabsynth.errors import ReleaseBlocked
from tabsynth.metrics.checks import run_one
from tabsynth.publish.gate import evaluate
from tabsynth.publish.policy import Policy, load_policy
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.release import release


@pytest.fixture(scope="module")
def adult_files(tmp_path_factory, adult):
    folder = tmp_path_factory.mktemp("adult")
    rows = adult.sample(3000, random_state=0).reset_index(drop=True)
    rows.iloc[:2400].to_csv(folder / "train.csv", index=False)
    rows.iloc[2400:].to_csv(folder / "holdout.csv", index=False)
    return folder


@pytest.mark.slow
def test_validate_a_copy_of_the_training_rows_is_blocked(adult_files, tabsynth_cli, tmp_path):
    train, holdout = adult_files / "train.csv", adult_files / "holdout.csv"
    report = tmp_path / "check.html"
    code, _, stderr = tabsynth_cli("validate", train, train, "--holdout", holdout, "--policy",
                                   "strict-external-sharing", "--report", report)
    assert code == 3
    failed = {line.split(": ")[2].split(" ")[0] for line in stderr.splitlines() if "blocked by policy" in line}
    assert {"dp_epsilon", "exact_copy_rate", "dcr_share", "mia_auc", "attribute_inference_risk"} <= failed
    assert "nothing was released" in stderr
    assert report.is_file() and [p.name for p in tmp_path.iterdir()] == ["check.html"]


def test_validate_without_holdout_fails_closed(adult_files, tabsynth_cli):
    train = adult_files / "train.csv"
    code, _, stderr = tabsynth_cli("validate", train, adult_files / "holdout.csv", "--policy", "internal-analytics")
    assert code == 3 and "dcr_share = no value" in stderr and "fails closed" in stderr


def test_validate_passes_an_honest_table(adult_files, tabsynth_cli, tmp_path):
    policy = tmp_path / "fidelity.yaml"
    policy.write_text("name: fidelity\nrules:\n  - {metric: mean_column_tvd, op: '<=', threshold: 0.05}\n"
                      "  - {metric: dcr_share, op: '<=', threshold: 0.6}\n")
    code, stdout, stderr = tabsynth_cli("validate", adult_files / "train.csv", adult_files / "holdout.csv",
                                        "--holdout", adult_files / "holdout.csv", "--policy", policy)
    # the holdout itself is a perfect "synthetic" table: real rows the model never saw
    assert code == 0, stderr
    assert "passes policy 'fidelity'" in stdout


def test_a_crashing_check_blocks(tmp_path, people):
    """A date as the prediction target makes the utility check raise: the release is blocked, not crashed."""
    out = tmp_path / "rel"
    with pytest.raises(ReleaseBlocked) as blocked:
        release(ReleaseOptions(data=people, out=out, target="admitted", seed=0))
    assert any("the utility check failed to run" in line for line in blocked.value.problems)
    assert not out.exists() and (tmp_path / "rel.blocked.html").is_file()


def test_crashes_and_nans_fail_closed():
    policy = load_policy("default")
    crashed = run_one("boom", lambda: [1 / 0])
    verdict = evaluate(policy, crashed)
    assert not verdict.passed
    assert any("ZeroDivisionError" in o.line() for o in verdict.failures())
    nan = [m for m in crashed if m.name.startswith("check_error")]
    assert nan and np.isnan(nan[0].value)


def test_every_failure_is_collected(tmp_path, people):
    policy = tmp_path / "hard.yaml"
    policy.write_text("name: hard\nrules:\n  - {metric: mean_column_tvd, op: '<', threshold: 0}\n"
                      "  - {metric: mean_pair_tvd, op: '<', threshold: 0}\n"
                      "  - {metric: category_coverage, op: '>', threshold: 1}\n")
    with pytest.raises(ReleaseBlocked) as blocked:
        release(ReleaseOptions(data=people, out=tmp_path / "rel", policy=str(policy), seed=0))
    named = " ".join(blocked.value.problems)
    assert all(name in named for name in ("mean_column_tvd", "mean_pair_tvd", "category_coverage"))
    assert blocked.value.exit_code == 3


def test_policy_typos_are_caught(tmp_path):
    from tabsynth.errors import PolicyError

    path = tmp_path / "typo.yaml"
    path.write_text("name: t\nrules:\n  - {metric: mia_acu, op: '<=', threshold: 0.6}\n")
    with pytest.raises(PolicyError, match="did you mean 'mia_auc'"):
        load_policy(path)
    path.write_text("name: t\nprivacy: {require_dp: true, cap: 3}\n"
                    "rules:\n  - {metric: mia_auc, op: '<=', threshold: 1}\n")
    with pytest.raises(PolicyError, match="privacy.cap"):
        load_policy(path)


def test_shipped_policies_load():
    for name in ("default", "strict-external-sharing", "internal-analytics", "fraud-model-training"):
        policy = load_policy(name)
        assert policy.rules and policy.description
    assert load_policy("strict-external-sharing").privacy.require_dp
    assert load_policy("strict-external-sharing").review.required


def test_utility_rules_name_the_targets_type(tmp_path):
    from tabsynth.errors import PolicyError
    from tabsynth.publish.policy import target_metric_problems

    path = tmp_path / "old.yaml"
    path.write_text("name: old\nrules:\n  - {metric: tstr_score, op: '>', threshold: 0.5}\n")
    with pytest.raises(PolicyError, match="use tstr_auc .binary or categorical target. or tstr_r2"):
        load_policy(path)
    fraud = load_policy("fraud-model-training")
    assert target_metric_problems(fraud, "is_fraud", "boolean") == []
    problems = target_metric_problems(fraud, "amount", "numerical")
    assert len(problems) == 2 and problems[0].startswith(
        "policy 'fraud-model-training': rule tstr_auc > 0.5 needs a binary or categorical target, but target "
        "'amount' is numerical")
    regression = Policy(name="r", rules=[{"metric": "tstr_r2", "op": ">", "threshold": 0}])
    assert "needs a numerical target" in target_metric_problems(regression, "is_fraud", "boolean")[0]


def test_a_mismatched_target_is_refused_before_any_work(tmp_path, tabsynth_cli):
    from tabsynth.testing import fraud_table

    data = tmp_path / "payments.csv"
    fraud_table(400, seed=0).to_csv(data, index=False)
    out = tmp_path / "rel"
    code, _, stderr = tabsynth_cli("release", data, "--out", out, "--policy", "fraud-model-training",
                                   "--target", "amount")
    assert code == 2 and not out.exists()
    assert "rule tstr_auc > 0.5 needs a binary or categorical target, but target 'amount' is numerical" in stderr


def test_a_dp_release_is_decided_on_dp_and_public_metrics_only():
    """Rules on checks that read private rows (and their crashes) are an internal assessment for a DP release;
    the same metrics block a release that is not DP."""
    from tabsynth.metrics.checks import check_error
    from tabsynth.metrics.result import MetricResult
    from tabsynth.publish.gate import DP_DECISION_METRICS

    policy = load_policy("strict-external-sharing")
    public = [MetricResult("dp_epsilon", 0.9, "min", "spent", reads_private_rows=False),
              MetricResult("constraint_violations", 0, "min", "facts", reads_private_rows=False)]
    private = [MetricResult("exact_copy_rate", 0.3, "min", "copies"), check_error("utility", ValueError("x"))]
    assert not evaluate(policy, public + private).passed  # not DP: every rule and crash decides
    verdict = evaluate(policy, public + private, private=True)
    assert verdict.passed and {o.metric for o in verdict.rules} == {"dp_epsilon", "constraint_violations"}
    assert {o.metric for o in verdict.rules} <= DP_DECISION_METRICS
    failing = {o.metric for o in verdict.assessment if not o.passed}
    assert {"exact_copy_rate", "check_error:utility", "dcr_share"} <= failing
    assert "exact_copy_rate <= 0" in verdict.to_dict()["internal_assessment_rules"]["rules"]
    assert "value" not in str(verdict.to_dict()["internal_assessment_rules"])
    public_crash = check_error("constraints", ValueError("bad rule"), reads_private_rows=False)
    assert not evaluate(policy, public + [public_crash], private=True).passed
    leaky = [public[0], MetricResult("constraint_violations", 0, "min", "learnt from real rows")]
    assert not evaluate(policy, leaky, private=True).passed  # a deciding metric that read private rows


def test_every_metric_the_checks_compute_is_in_the_one_catalogue():
    """Policies, the gate and --model auto read metric names from metrics/catalogue.py; a check that computes a
    metric the catalogue lacks could not be named in a policy."""
    import re

    import pandas as pd

    from tabsynth.metrics import catalogue
    from tabsynth.metrics.checks import CheckOptions, run_checks
    from tabsynth.table.infer import infer_schema

    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame({"age": rng.integers(20, 80, n), "sex": rng.choice(["F", "M"], n),
                          "income": rng.normal(3000, 500, n).round(2), "label": rng.choice(["yes", "no"], n)})
    schema = infer_schema(table)
    found = set()
    for target in ("label", "income"):
        metrics = run_checks(table[:200], table[200:], table.sample(200, random_state=1).reset_index(drop=True),
                             schema, CheckOptions(target=target, sensitive=("sex",)))
        found |= {m.name for m in metrics}
    unknown = {name for name in found if name not in catalogue.METRICS and not catalogue.PER_COLUMN.match(name)}
    assert not unknown
    assert {"tstr_auc", "tstr_r2", "mean_column_tvd", "dcr_share", "pii_leak"} <= found
    assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in catalogue.METRICS)
