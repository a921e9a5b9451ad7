"""`--model auto` (the default): the choice by policy and table size, recorded in the manifest; what a blocked
release suggests; and the date order every real row holds, enforced and checked by the default policy."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import InputError, ReleaseBlocked
from tabsynth.metrics.constraints import check_constraints
from tabsynth.rules.constraints import learnt_orders
from tabsynth.run.auto import argn_params, blocked_hints, choose_model, wants_dp
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.release import release
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema

INTERNAL = ("exact_copy_excess", "dcr_share", "mean_pair_tvd", "correlation_difference")


def test_a_small_table_gets_argn_with_its_epochs_and_bins_scaled():
    choice = choose_model(dp=False, rows=10_000, columns=4, rule_metrics=INTERNAL)
    assert choice.name == "argn" and choice.chosen_by == "auto"
    assert choice.params == {"epochs": 100, "bins": 25, "sub_bins": 10}
    assert "correlation_difference, mean_pair_tvd" in choice.why and "10,000 rows x 4" in choice.why
    assert argn_params(500, 40)["bins"] == 10 and argn_params(10**6, 40)["bins"] == 100


def test_a_table_past_the_time_budget_gets_copula_and_says_why():
    adult_like = choose_model(dp=False, rows=26_000, columns=14, rule_metrics=INTERNAL)
    assert adult_like.name == "argn" and 10 <= adult_like.params["epochs"] < 100  # capped to fit the budget
    big = choose_model(dp=False, rows=2_000_000, columns=30, rule_metrics=INTERNAL)
    assert big.name == "copula" and big.params == {}
    assert "past the 300 s budget" in big.why and "may block it" in big.why
    assert choose_model(dp=False, rows=26_000, columns=14, seconds=10).name == "copula"
    wide = choose_model(dp=False, rows=60, columns=2000)  # argn's memory grows with the square of the columns
    assert wide.name == "copula" and "square of the columns" in wide.why


def test_a_dp_choice_is_dp_marginal_whatever_the_table():
    choices = [choose_model(dp=True, rows=rows, columns=columns) for rows, columns in ((10, 2), (10**7, 50))]
    assert choices == [choose_model(dp=True)] * 2 and choices[0].name == "dp-marginal" and choices[0].params == {}
    assert wants_dp(require_dp=True, rule_metrics=(), epsilon_given=False)
    assert wants_dp(require_dp=False, rule_metrics=("dp_epsilon",), epsilon_given=False)
    assert wants_dp(require_dp=False, rule_metrics=(), epsilon_given=True)
    assert wants_dp(require_dp=False, rule_metrics=(), epsilon_given=False, engine="duckdb")
    assert not wants_dp(require_dp=False, rule_metrics=INTERNAL, epsilon_given=False)


def test_blocked_hints_name_what_is_likely_to_pass():
    hints = blocked_hints(["correlation_difference", "tvd:age", "dcr_share", "constraint_violations",
                           "check_error:utility"], "copula")
    assert [hint.split(":")[0] for hint in hints] == ["privacy risk", "constraints", "fidelity"]
    assert "--model argn" in hints[2] and "--model dp-marginal" in hints[0]
    assert "--model argn" not in blocked_hints(["mean_pair_tvd"], "argn")[0]
    assert blocked_hints(["dp_epsilon"], "copula") == [
        "differential privacy: the policy needs a DP model (--model dp-marginal, or --model auto)"]
    assert blocked_hints([], "copula") == []


def _stays(n: int, rng: np.random.Generator) -> pd.DataFrame:
    admitted = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    stay = pd.to_timedelta(np.round(rng.gamma(2.0, 48.0, n)), unit="h")
    discharged = (admitted + stay).strftime("%Y-%m-%d %H:%M").to_numpy(object)
    discharged[rng.random(n) < 0.1] = None  # still in hospital
    return pd.DataFrame({"age": rng.integers(18, 95, n), "ward": rng.choice(["a", "b", "c"], n),
                         "admitted": admitted.strftime("%Y-%m-%d %H:%M"), "discharged": discharged})


@pytest.fixture
def stays_csv(tmp_path) -> Path:
    path = tmp_path / "stays.csv"
    _stays(600, np.random.default_rng(3)).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_the_default_release_chooses_records_and_keeps_the_date_order(stays_csv, tmp_path, tabsynth_cli):
    out = tmp_path / "rel"
    code, stdout, stderr = tabsynth_cli("release", stays_csv, "--out", out, "--seed", "0")
    assert code == 0, stdout + stderr
    assert "model: argn, chosen by --model auto: argn keeps pairwise" in " ".join(stdout.split())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["name"] == "argn" and manifest["model"]["chosen_by"] == "auto"
    assert manifest["model"]["params"]["bins"] == 10 and "600 rows x 4 modelled columns" in manifest["model"]["why"]
    synthetic = pd.read_parquet(out / "synthetic.parquet")
    admitted, discharged = (pd.to_datetime(synthetic[name]) for name in ("admitted", "discharged"))
    assert not (discharged < admitted).any() and discharged.isna().any()
    checks = next(m for m in manifest["metrics"] if m["name"] == "constraint_violations")["details"]["expectations"]
    order = [e for e in checks if e["rule"] == "admitted <= discharged (as in every real row)"]
    assert order and order[0]["passed"]


@pytest.mark.slow
def test_a_named_model_is_recorded_as_the_users_choice(stays_csv, tmp_path):
    result = release(ReleaseOptions(data=stays_csv, out=tmp_path / "rel", model="copula", seed=0))
    assert result.manifest["model"]["chosen_by"] == "user" and result.manifest["model"]["name"] == "copula"
    synthetic = result.synthetic  # the copula draws discharges before admissions; sampling rejects them
    assert not (synthetic["discharged"] < synthetic["admitted"]).any()
    assert result.manifest["sampling"]["rejected_by_constraints"] > 0


def test_auto_refuses_model_parameters(stays_csv, tmp_path):
    with pytest.raises(InputError, match="--param needs --model NAME"):
        release(ReleaseOptions(data=stays_csv, out=tmp_path / "rel", model_params={"epochs": 3}))


def test_rows_breaking_a_real_date_order_fail_the_default_policys_rule():
    rng = np.random.default_rng(4)
    raw = _stays(300, rng)
    schema = infer_schema(raw)
    real = conform(raw, schema)
    early = real["admitted"] - pd.Timedelta(hours=1)
    broken = real["discharged"].notna() & (early >= real["discharged"].min())  # within the schema's bounds
    rows = broken[broken].index[:5]
    synthetic = real.copy()
    synthetic.loc[rows, "discharged"] = early[rows]
    found = {m.name: m for m in check_constraints(synthetic, schema, [], real=real)}
    failed = [e for e in found["constraint_violations"].details["expectations"] if not e["passed"]]
    assert [e["rule"] for e in failed] == ["admitted <= discharged (as in every real row)"]
    assert failed[0]["unexpected_count"] == 5 and found["constraint_valid_share"].value == 1 - 5 / len(real)
    # without the real rows (a DP release) no order is learnt: only declared facts and constraints
    dp_facts = Schema.from_dict(schema.public())
    assert not any("<=" in e["rule"] for e in
                   check_constraints(synthetic, dp_facts, [])[0].details["expectations"])


def test_only_orders_every_real_row_holds_are_learnt():
    rng = np.random.default_rng(5)
    real = conform(raw := _stays(300, rng), schema := infer_schema(raw))
    assert [(r.first, r.second) for r in learnt_orders(schema, real)] == [("admitted", "discharged")]
    real.loc[7, "discharged"] = real.loc[7, "admitted"] - pd.Timedelta(hours=1)
    assert learnt_orders(schema, real) == []
    assert learnt_orders(schema, real.iloc[:15].assign(discharged=real["admitted"].iloc[:15])) == []


@pytest.mark.slow
def test_a_blocked_release_names_what_to_try(stays_csv, tmp_path):
    strict = tmp_path / "strict.yaml"
    strict.write_text("name: strict-fidelity\nrules:\n"
                      "  - {metric: mean_column_tvd, op: '<=', threshold: 0.0}\n")
    with pytest.raises(ReleaseBlocked) as blocked:
        release(ReleaseOptions(data=stays_csv, out=tmp_path / "rel", model="copula", policy=str(strict), seed=0))
    assert any(line.startswith("to try: fidelity: try --model argn") for line in blocked.value.problems)


def test_a_dp_policy_gets_dp_marginal_and_the_manifest_says_so_without_the_tables_size(stays_csv, tmp_path):
    result = release(ReleaseOptions(data=stays_csv, out=tmp_path / "rel", policy="strict-external-sharing",
                                    source_id="stays", seed=0))
    model = result.manifest["model"]
    assert (model["name"], model["chosen_by"], model["differentially_private"]) == ("dp-marginal", "auto", True)
    assert "reads nothing of the table" in model["why"] and not any(ch.isdigit() for ch in model["why"])
