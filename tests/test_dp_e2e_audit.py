"""End-to-end black-box DP audits through `tabsynth.run.release.release`, the path of `tabsynth release`.

Each audit releases D and D' = D + one canary row 20 times each and bounds ε from attacker events declared
beforehand (tests/dp_audit_release.py). 20 runs per side can show at most about ε = 1.15 with three events, so
these suite-sized audits catch deterministic leaks: the mutants below, or one row deciding a released fact.
benchmarks/dp_audit_e2e.py runs the long audits (every model, every canary, more runs).
"""

import warnings

import dp_audit_release as scenarios
import numpy as np
import pandas as pd
import pytest

from tabsynth.privacy import audit_e2e as audit

RUNS = 20


def run_audit(tmp_path, model: str, variant: str, *, schema=None, seed=None, reference: bool = False):
    chosen = scenarios.VARIANTS[variant]
    without, with_canary = chosen.tables()
    schema = scenarios.public_schema(tmp_path, chosen.column) if schema is None else schema
    run = scenarios.release_runner(tmp_path, model, schema=schema, seed=seed)
    events = {"refused": audit.refused, **scenarios.reference_events(run, without)} if reference else chosen.events
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus and torch warn on tiny tables; the audit reads outputs only
        return audit.audit_release(run, without, with_canary, events, RUNS, scenarios.DELTA)


def describe(result: audit.AuditResult) -> str:
    return f"{result.best_event}: {dict(result.hits_without)} vs {dict(result.hits_with)} of {result.runs}"


def test_harness_bounds_a_deterministic_event_and_nothing_else():
    refusal, release = audit.Outcome(error="refused"), audit.Outcome(data=pd.DataFrame({"age": [1]}))
    def refuses_the_canary(table):
        return refusal if len(table) > 1 else release
    events = {"refused": audit.refused}
    result = audit.audit_release(refuses_the_canary, [0], [0, 1], events, runs=40, delta=1e-9)
    assert result.hits_without == {"refused": 0} and result.hits_with == {"refused": 40}
    assert 2.0 < result.epsilon_lower < 3.0 and result.best_event == "refused"
    assert audit.audit_release(lambda table: refusal, [0], [0, 1], events, runs=40, delta=1e-9).epsilon_lower == 0


def test_events_read_what_an_attacker_sees():
    released = audit.Outcome(data=pd.DataFrame({"age": [30.0, 40.5, np.nan], "stage": ["I", "IV", "II"]}))
    whole = audit.Outcome(data=pd.DataFrame({"age": [30, 40, 200_000], "stage": ["I", "I", "II"]}))
    checks = {audit.float_column("age"): (True, False), audit.has_missing("age"): (True, False),
              audit.non_integer("age"): (True, False), audit.category_appears("stage", "IV"): (True, False),
              audit.beyond("age", 1e5): (False, True), audit.same_output_as(whole): (False, True),
              audit.same_row_count_as(whole): (True, True), audit.refused: (False, False)}
    for event, expected in checks.items():
        assert (event(released), event(whole)) == expected
    assert not any(event(audit.Outcome(error="refused")) for event in list(checks)[:-1])


@pytest.mark.slow
def test_dp_marginal_default_path_passes_audit_with_a_nan_canary(tmp_path):
    # age is not in the schema file: its dtype and nullability are the release's to measure
    result = run_audit(tmp_path, "dp-marginal", "nan")
    assert result.epsilon_lower <= scenarios.EPSILON, describe(result)


@pytest.mark.slow
def test_audit_flags_a_fact_read_unpaid(tmp_path):
    # the steward passes a schema inferred from each private table: the NaN row decides age's dtype
    result = run_audit(tmp_path, "dp-marginal", "nan", schema=scenarios.inferred_schema(tmp_path))
    assert result.epsilon_lower > scenarios.EPSILON, describe(result)


@pytest.mark.slow
def test_audit_flags_noise_removed(tmp_path):
    with scenarios.noise_removed():
        result = run_audit(tmp_path, "dp-marginal", "declared rare", seed=scenarios.SEED, reference=True)
    assert result.epsilon_lower > scenarios.EPSILON, describe(result)


@pytest.mark.slow
def test_audit_flags_a_seeded_noise_stream(tmp_path):
    with scenarios.seeded_noise():
        result = run_audit(tmp_path, "dp-marginal", "declared rare", seed=scenarios.SEED, reference=True)
    assert result.epsilon_lower > scenarios.EPSILON, describe(result)


@pytest.mark.parametrize(("model", "variant", "seed", "reference"), [
    ("dp-ctgan", "nan", None, False),  # the default path of a DP-SGD model
    ("dp-argn", "declared rare", scenarios.SEED, True),  # --seed fixes split and sampling, never the noise
])
@pytest.mark.slow
def test_dpsgd_models_pass_a_smoke_audit(tmp_path, model, variant, seed, reference):
    result = run_audit(tmp_path, model, variant, seed=seed, reference=reference)
    assert result.epsilon_lower <= scenarios.EPSILON, describe(result)
