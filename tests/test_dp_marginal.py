import json

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import ModelError
from tabsynth.models import aim
from tabsynth.models.base import create_model, save_model
from tabsynth.models.dp_marginal import DPMarginal
from tabsynth.privacy.accounting import zcdp_epsilon
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Facts

CANARY_WORD, CANARY_NUMBER = "CANARY-7731", 987654.321


def clinic(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A table with dependence between columns, one unique word and one unique outlier."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    ward = np.where(age > 60, rng.choice(["cardio", "geriatrics"], n), rng.choice(["surgery", "maternity"], n))
    table = pd.DataFrame({
        "age": age,
        "ward": ward,
        "bill": np.round(age * 40 + rng.gamma(2, 300, n), 3),
        "readmitted": rng.random(n) < np.where(age > 60, 0.4, 0.1),
    })
    table.loc[7, "ward"], table.loc[11, "bill"] = CANARY_WORD, CANARY_NUMBER
    return table


@pytest.fixture(scope="module")
def data():
    raw = clinic()
    schema = infer_schema(raw)
    return conform(raw, schema), schema


def fit(data, seed: int | None = 0, epsilon: float = 1.0, **params) -> DPMarginal:
    table, schema = data
    noise = RandomSource.system() if seed is None else RandomSource.seeded(seed)
    return DPMarginal(rounds=6, iterations=50, final_iterations=200, **params).fit(
        table, schema, budget=Budget(epsilon, 1e-8, noise))


@pytest.fixture(scope="module")
def model(data):
    return fit(data)


def test_a_budget_is_required(data):
    table, schema = data
    with pytest.raises(ModelError, match="give it a privacy budget"):
        DPMarginal().fit(table, schema)


def test_bad_parameters_are_one_error(data):
    table, schema = data
    with pytest.raises(ModelError) as caught:
        DPMarginal(degree=0, binning="log", target="nope").fit(
            table, schema, budget=Budget(1.0, 1e-8, RandomSource.seeded(0)))
    assert len(caught.value.problems) == 3


def test_spending_is_within_the_budget_and_fully_accounted(model):
    spent = model.privacy_
    assert 0.99 < spent["epsilon"] <= 1.0 and spent["delta"] <= 1e-8
    assert spent["rho"] == pytest.approx(sum(m["rho"] for m in spent["measurements"]))
    conversion_delta = 1e-8 - sum(m.get("delta", 0.0) for m in spent["measurements"])
    assert zcdp_epsilon(spent["rho"], conversion_delta) <= 1.0
    kinds = {m["what"][0] for m in spent["measurements"]}
    assert kinds == {"categories", "range histogram", "marginal", "select"}
    assert spent["noise"]["kind"] == "seeded" and "zCDP" in spent["accounting"]
    assert not any("noisy" in m or "values" in m for m in spent["measurements"])


def test_the_noisy_total_is_the_default_row_count(model, data):
    assert model.rows_ == max(1, round(model.model_.total))
    assert abs(model.rows_ - len(data[0])) < 200 and model.rows_ != len(data[0])
    assert len(model.sample(rng=0)) == model.rows_


def test_canary_never_reaches_model_files_or_samples(model, data, tmp_path):
    save_model(model, data[1], tmp_path)
    blob = (tmp_path / "model.json").read_bytes() + (tmp_path / "arrays.npz").read_bytes()
    assert CANARY_WORD.encode() not in blob and b"987654" not in blob
    assert np.float64(CANARY_NUMBER).tobytes() not in blob
    sample = model.sample(20_000, rng=1)
    assert CANARY_WORD not in set(sample["ward"]) and sample["bill"].max() < 100_000


def test_model_files_hold_no_observed_facts(model, data, tmp_path):
    save_model(model, data[1], tmp_path)
    document = json.loads((tmp_path / "model.json").read_text())
    assert all("observed" not in column for column in document["schema"]["columns"])
    released = document["state"]["encoding"][1]["values"]
    assert set(released) <= {"cardio", "geriatrics", "surgery", "maternity", "(other)"}  # the merged rare ones


def test_fit_never_reads_observed_facts(data):
    table, schema = data
    scrambled = schema
    for column in schema.modelled():
        scrambled = scrambled.replace(column.name, observed=Facts(min=-5, max=5, categories=("x",)), missing=0.5)
    states = [fit((table, s), seed=4).get_state() for s in (schema, scrambled)]
    assert json.dumps(states[0][0]) == json.dumps(states[1][0])
    assert all(np.array_equal(states[0][1][k], states[1][1][k]) for k in states[0][1])


def test_declared_domains_cost_nothing_and_bound_the_output(data):
    table, schema = data
    schema = schema.replace("ward", declared=Facts(categories=("cardio", "geriatrics", "surgery", "maternity")))
    schema = schema.replace("age", declared=Facts(min=0, max=100))
    model = fit((table, schema))
    paid = [m["what"] for m in model.privacy_["measurements"] if m["what"][0] not in ("marginal", "select")]
    assert paid == [["range histogram", "bill"]], "only bill's domain is measured"
    sample = model.sample(5000, rng=0)
    assert set(sample["ward"].dropna()) <= {"cardio", "geriatrics", "surgery", "maternity"}
    assert sample["age"].between(0, 100).all()


def test_seeded_runs_repeat_and_system_noise_differs(data, model):
    again = fit(data, seed=0)
    assert json.dumps(again.get_state()[0]) == json.dumps(model.get_state()[0])
    assert again.sample(300, rng=5).equals(model.sample(300, rng=5))
    first, second = fit(data, seed=None), fit(data, seed=None)
    assert first.privacy_["noise"]["kind"] == "system"
    assert json.dumps(first.get_state()[0]) != json.dumps(second.get_state()[0])


def test_the_model_keeps_the_dependence(model, data):
    sample = model.sample(20_000, rng=3)
    old = sample["age"] > 60
    assert sample.loc[old, "ward"].isin(["cardio", "geriatrics"]).mean() > 0.8
    assert sample.loc[~old, "ward"].isin(["surgery", "maternity"]).mean() > 0.8
    assert sample.loc[old, "readmitted"].mean() > sample.loc[~old, "readmitted"].mean() + 0.15


def test_registered_by_name():
    assert isinstance(create_model("dp-marginal", degree=2), DPMarginal)
    assert DPMarginal.differentially_private is True


def test_workload_and_candidates_follow_aim():
    names = ["a", "b", "c", "d"]
    assert len(aim.workload(names, 3)) == 4
    with_target = aim.workload(names, 3, target="d")
    assert len(with_target) == 6 + 3 and all("d" in c for c in with_target if len(c) == 3)
    pool = aim.candidates({("a", "b"): 1.0, ("b", "c"): 1.0})
    assert pool == {("a",): 1.0, ("a", "b"): 3.0, ("b",): 2.0, ("b", "c"): 3.0, ("c",): 1.0}


def test_one_way_marginals_cost_their_share_of_aims_budget(model):
    """The starting one-way marginals (measured in preprocessing or by AIM) cost exactly ONE_WAY_SHARE of what
    is left after the domain mechanisms."""
    measurements = model.privacy_["measurements"]
    domains = sum(m["rho"] for m in measurements if m["what"][0] not in ("marginal", "select"))
    firsts = {}  # AIM may select a one-way again later: only each column's first measurement starts the model
    for m in measurements:
        if m["what"][0] == "marginal" and len(m["what"]) == 2:
            firsts.setdefault(m["what"][1], m["rho"])
    one_ways = sum(firsts.values())
    assert one_ways == pytest.approx(aim.ONE_WAY_SHARE * (model.privacy_["rho"] - domains), rel=1e-6)
