import numpy as np
import pytest

from tabsynth.errors import InputError, PolicyError
from tabsynth.io.atomic import staged_directory
from tabsynth.metrics.result import MetricResult
from tabsynth.publish.gate import evaluate
from tabsynth.publish.policy import load_policy
from tabsynth.table.split import split
from tabsynth.testing import contract_table


def metric(name, value):
    return MetricResult(name, value, "min", "test metric")


def test_gate_collects_every_failure_and_fails_closed():
    policy = load_policy("default")
    verdict = evaluate(policy, [metric("exact_copy_excess", float("nan"))])
    assert not verdict.passed
    reasons = {o.metric: o.reason for o in verdict.failures()}
    assert reasons == {"exact_copy_excess": "metric is not a finite number (fails closed)",
                       "mean_column_tvd": "metric was not computed (fails closed)",
                       "constraint_violations": "metric was not computed (fails closed)",
                       "pii_leak": "metric was not computed (fails closed)"}
    good = [metric("exact_copy_excess", 0.0), metric("mean_column_tvd", 0.01), metric("constraint_violations", 0),
            metric("pii_leak", 0)]
    assert evaluate(policy, good).passed
    assert not evaluate(policy, [metric("exact_copy_excess", 0.2), *good[1:]]).passed


@pytest.mark.parametrize("text, fragment", [
    ("name: x\nrules: []\n", "rules"),
    ("name: x\nrules:\n  - {metric: m, op: '~', threshold: 1}\n", "op"),
    ("name: x\nholdout_share: 1.5\nrules:\n  - {metric: m, op: '<', threshold: 1}\n", "holdout_share"),
])
def test_bad_policies_are_refused(tmp_path, text, fragment):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=fragment):
        load_policy(path)


def test_split_is_disjoint_and_keeps_about_the_share():
    table = contract_table(2000).reset_index()
    train, holdout = split(table, 0.2, np.random.default_rng(0))
    assert len(train) + len(holdout) == 2000 and abs(len(holdout) - 400) < 60
    assert not set(train["index"]) & set(holdout["index"])
    one_row_train, one_row_holdout = split(table.head(1), 0.2, np.random.default_rng(1))
    assert len(one_row_train) == 1 and len(one_row_holdout) == 0
    with pytest.raises(InputError, match="holdout_share"):
        split(table.head(3), 0.99, np.random.default_rng(0))


def test_adding_one_row_changes_the_training_set_by_at_most_that_row():
    """Add/remove neighbouring for the training set: D + one row trains on D's training rows, plus maybe the new
    one (a fixed holdout size would make some additions swap a training row instead)."""
    table = contract_table(201).reset_index()
    for n in range(10, 201):
        smaller = set(split(table.head(n), 0.2, np.random.default_rng(n))[0]["index"])
        larger = set(split(table.head(n + 1), 0.2, np.random.default_rng(n))[0]["index"])
        assert smaller <= larger and larger - smaller <= {n}, n


def test_staged_directory_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "release"
    with pytest.raises(RuntimeError):
        with staged_directory(out) as staging:
            (staging / "synthetic.parquet").write_text("half")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []
    with staged_directory(out) as staging:
        (staging / "synthetic.parquet").write_text("whole")
    assert (out / "synthetic.parquet").read_text() == "whole"


def test_regenerated_keys_keep_their_dtype():
    import pandas as pd

    from tabsynth.sample.identifiers import add_identifiers
    from tabsynth.table.infer import infer_schema

    frame = pd.DataFrame({"visit_id": [1.0, 2.0, 4.0, 8.0], "code": ["A", "B", "A", "B"]})
    schema = infer_schema(frame)
    out = add_identifiers(frame[["code"]], schema, 4, np.random.default_rng(0))
    assert out["visit_id"].dtype == frame["visit_id"].dtype and out["visit_id"].is_unique
    assert list(out.columns) == ["visit_id", "code"]


def test_fake_pii_keeps_the_missing_share():
    import pandas as pd

    from tabsynth.sample.identifiers import add_identifiers
    from tabsynth.table.infer import infer_schema

    emails = [f"person{i}@mail.com" if i % 4 else None for i in range(400)]
    frame = pd.DataFrame({"email": emails, "x": np.arange(400) % 7})
    schema = infer_schema(frame)
    assert schema["email"].pii == "email"
    out = add_identifiers(frame[["x"]], schema, 4000, np.random.default_rng(0))
    assert abs(out["email"].isna().mean() - 0.25) < 0.03
