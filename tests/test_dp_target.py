"""Target-aware DP fits: the run plan passes --target (or the policy's) to the models that take one, an explicit
--param target wins, and dp-marginal's workload weights the marginals that hold the target."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import tabsynth
from tabsynth.errors import InputError
from tabsynth.models import aim
from tabsynth.privacy.ledger import Ledger
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.plan import plan_for, settle_model
from tabsynth.table.infer import infer_schema

FAST = {"rounds": 3, "iterations": 10, "final_iterations": 20}


def loans(n: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    income = rng.integers(10, 200, n)
    return pd.DataFrame({"income": income, "grade": rng.choice(["A", "B", "C"], n),
                         "region": rng.choice(["north", "south"], n),
                         "default": np.where(rng.random(n) < np.where(income < 60, 0.4, 0.05), "yes", "no")})


def test_the_workload_weights_every_marginal_holding_the_target():
    names = ["a", "b", "c", "t"]
    plain = aim.workload(names, 3)
    assert set(plain.values()) == {1.0} and len(plain) == 4
    weights = aim.workload(names, 3, target="t")
    pairs = {c: w for c, w in weights.items() if len(c) == 2}
    assert len(pairs) == 6  # every pair, (t, x) among them
    assert all(w == (aim.TARGET_WEIGHT if "t" in c else 1.0) for c, w in pairs.items())
    assert {c: w for c, w in weights.items() if len(c) == 3} == {c: aim.TARGET_WEIGHT for c in
                                                                 [("a", "b", "t"), ("a", "c", "t"), ("b", "c", "t")]}
    assert aim.TARGET_WEIGHT > 1
    two_way = aim.workload(names, 2, target="t", target_weight=3.0)
    assert two_way[("a", "t")] == 3.0 and two_way[("a", "b")] == 1.0 and len(two_way) == 6
    candidates = aim.candidates(weights)  # AIM's selection favours the target's marginals
    assert candidates[("a", "t")] > candidates[("a", "b")] and candidates[("t",)] > candidates[("a",)]


def _plan(tmp_path, model="dp-marginal", policy_target=None, **changes):
    policy = tmp_path / "p.yaml"
    policy.write_text("name: p\n" + (f"target: {policy_target}\n" if policy_target else "")
                      + "rules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n")
    options = replace(ReleaseOptions(data=tmp_path / "d.csv", out=tmp_path / "rel", model=model, epsilon=1.0,
                                     policy=str(policy)), **changes)
    return options, plan_for(options, tmp_path / "d.csv")


def test_the_plan_gives_its_target_to_the_model_unless_a_param_names_one(tmp_path):
    assert _plan(tmp_path, target="default")[1].model.target == "default"
    assert _plan(tmp_path, policy_target="default")[1].model.target == "default"  # the policy's
    assert _plan(tmp_path, policy_target="grade", target="default")[1].model.target == "default"  # --target wins
    explicit = _plan(tmp_path, target="default", model_params={"target": "region"})[1]
    assert explicit.model.target == "region" and explicit.target == "default"  # the model's, the checks'
    assert _plan(tmp_path, target="default", model_params={"target": None})[1].model.target is None  # opted out
    assert "target" not in _plan(tmp_path, model="copula", target="default", epsilon=None)[1].model.get_params()


def test_auto_gives_the_target_to_the_dp_model_it_chooses(tmp_path):
    options, plan = _plan(tmp_path, model="auto", target="default")
    options, plan = settle_model(options, plan, infer_schema(loans()), 1500)
    assert options.model == "dp-marginal" and plan.model.target == "default"


@pytest.mark.slow
def test_a_dp_release_with_a_target_records_it_in_the_manifest(tmp_path, ledger_url):
    result = tabsynth.release(loans(), out=tmp_path / "rel", model="dp-marginal", params=FAST, epsilon=1.0,
                              target="default", policy="default", progress=False)
    params = json.loads((result.out / "manifest.json").read_text())["model"]["params"]
    assert params["target"] == "default" and params["target_weight"] == aim.TARGET_WEIGHT


@pytest.mark.slow
def test_an_explicit_param_target_wins_over_the_command_line_target(tmp_path, tabsynth_cli, ledger_url):
    data = tmp_path / "loans.csv"
    loans().to_csv(data, index=False)
    code, _, stderr = tabsynth_cli("release", data, "--out", tmp_path / "rel", "--model", "dp-marginal",
                                   "--epsilon", "1", "--target", "default", "--param", "target=grade",
                                   *[f"--param={k}={v}" for k, v in FAST.items()], "--format", "csv")
    assert code == 0, stderr
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    assert manifest["model"]["params"]["target"] == "grade"


def test_a_dp_fit_takes_the_target_and_refuses_a_missing_one_before_the_debit(tmp_path, ledger_url):
    fitted = tabsynth.Synthesizer("dp-marginal", **FAST).fit(loans(), epsilon=1.0, target="default", progress=False)
    assert fitted.model_.target == "default"
    assert len(Ledger(ledger_url).history()) == 1
    with pytest.raises(InputError, match="'churn' is not a modelled column"):
        tabsynth.Synthesizer("dp-marginal", **FAST).fit(loans(), epsilon=1.0, target="churn", progress=False)
    assert len(Ledger(ledger_url).history()) == 1  # nothing spent on the refused fit


@pytest.mark.slow
def test_the_out_of_core_release_passes_the_target(tmp_path):
    from tabsynth.run.out_of_core import release_out_of_core

    data = tmp_path / "loans.parquet"
    loans().to_parquet(data)
    policy = tmp_path / "dp.yaml"
    policy.write_text("name: dp\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n")
    options = ReleaseOptions(data=data, out=tmp_path / "rel", model="dp-marginal", epsilon=1.0, target="default",
                             policy=str(policy), ledger=f"sqlite:///{tmp_path / 'ledger.db'}", model_params=FAST,
                             source_id="loans", engine="duckdb")
    result = release_out_of_core(options)
    assert result.manifest["model"]["params"]["target"] == "default"



def test_dp_argn_generates_the_target_last_and_keeps_the_tables_column_order(tmp_path):
    from tabsynth.models.base import load_model, save_model
    from tabsynth.privacy.budget import Budget
    from tabsynth.privacy.mechanisms import RandomSource
    from tabsynth.run.plan import conform_rows

    _, plan = _plan(tmp_path, model="dp-argn", target="income", model_params={"epochs": 1, "hidden": 8})
    assert plan.model.get_params()["target"] == "income"
    raw = loans(400)
    schema = infer_schema(raw)
    model = plan.model.fit(conform_rows(raw, schema, False), schema, budget=Budget(1.0, 1e-6, RandomSource.seeded(3)),
                           rng=0)
    assert model.tokens_.names[-1] == "income"
    assert list(model.sample(20, rng=0).columns) == list(raw.columns)
    save_model(model, schema, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert loaded.target == "income" and list(loaded.sample(5, rng=0).columns) == list(raw.columns)
