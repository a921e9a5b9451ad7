import numpy as np
import pytest
import torch

from tabsynth.errors import ModelError
from tabsynth.models.base import load_model, save_model
from tabsynth.models.dp_ctgan import DPCTGAN, composed_epsilon
from tabsynth.privacy.accounting import dpsgd_epsilon, zcdp_epsilon
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import contract_table

SMALL = {"epochs": 2, "batch_size": 64, "embedding_dim": 8, "generator_dim": [16], "discriminator_dim": [16],
         "threads": 1}
CANARY = "canary-7f3a91"


def fit(table, epsilon=3.0, delta=1e-6, **params):
    schema = infer_schema(table)
    data = conform(table, schema)
    model = DPCTGAN(**(SMALL | params)).fit(data, schema, budget=Budget(epsilon, delta, RandomSource.seeded(7)), rng=0)
    return model, schema, data


def dpsgd_record(model: DPCTGAN) -> dict:
    return next(m for m in model.privacy_["measurements"] if m["what"] == ["discriminator", "DP-SGD"])


@pytest.fixture(scope="module")
def fitted():
    return fit(contract_table())[0]


def test_reported_epsilon_composes_both_parts_within_the_budget(fitted):
    privacy, sgd = fitted.privacy_, dpsgd_record(fitted)
    assert privacy["epsilon"] <= 3.0 and privacy["delta"] <= 1e-6
    assert privacy["rho"] == pytest.approx(sum(m["rho"] for m in privacy["measurements"] if "rho" in m))
    alone = dpsgd_epsilon(sgd["noise_multiplier"], sgd["sample_rate"], sgd["steps"], sgd["delta"])
    assert alone == pytest.approx(sgd["dpsgd_epsilon"], rel=0.05)  # opacus's own accountant, its own orders
    assert max(alone, zcdp_epsilon(privacy["rho"], sgd["delta"])) < privacy["epsilon"]
    assert sgd["steps"] == sgd["planned_steps"] >= 2, "a derived noise multiplier pays for the whole epoch cap"
    assert privacy["noise"]["kind"] == "seeded" and "seed" not in privacy["noise"]


def test_training_stops_where_the_budget_runs_out():
    model, _, _ = fit(contract_table(), epsilon=1.0, noise_multiplier=5.0, epochs=50)
    privacy, sgd = model.privacy_, dpsgd_record(model)
    assert 1 <= sgd["steps"] < sgd["planned_steps"]
    assert privacy["epsilon"] <= 1.0
    one_more = [(sgd["noise_multiplier"], sgd["sample_rate"], sgd["steps"] + 1)]
    assert composed_epsilon(privacy["rho"], one_more, sgd["delta"]) > 1.0


def test_rows_default_to_the_noisy_count(fitted):
    assert abs(fitted.rows_ - 300) < 60
    assert len(fitted.sample(rng=1)) == fitted.rows_


def test_a_category_held_by_one_row_is_neither_saved_nor_sampled(tmp_path):
    table = contract_table(600)
    table["ward"] = np.where(np.arange(600) % 2 == 0, "north", "south")
    table.loc[17, "ward"] = CANARY
    model, schema, _ = fit(table)
    save_model(model, schema, tmp_path)
    for path in tmp_path.iterdir():
        assert CANARY.encode() not in path.read_bytes(), path.name
    loaded, _ = load_model(tmp_path)
    sample = loaded.sample(3000, rng=0)
    assert CANARY not in set(sample["ward"].dropna())
    assert {"north", "south"} <= set(sample["ward"].dropna())


def test_a_seeded_fit_is_reproducible_and_leaves_global_random_state_alone():
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    threads = torch.get_num_threads()
    first, second = (fit(contract_table(200), epochs=1)[0].sample(50, rng=0) for _ in range(2))
    assert first.equals(second)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert torch.get_num_threads() == threads


def test_fit_needs_a_budget_and_valid_parameters():
    table = contract_table(50)
    schema = infer_schema(table)
    with pytest.raises(ModelError, match="give it a privacy budget"):
        DPCTGAN().fit(conform(table, schema), schema)
    budget = Budget(1.0, 1e-6, RandomSource.seeded(0))
    with pytest.raises(ModelError) as error:
        DPCTGAN(epochs=0, generator_dim=[0], preprocess_share=1.5).fit(conform(table, schema), schema, budget=budget)
    assert len(error.value.problems) == 3


def test_sample_refuses_conditions_and_negative_counts(fitted):
    with pytest.raises(ModelError, match="use tabsynth.sample.conditional"):
        fitted.sample(5, conditions={"grade": "A"})
    with pytest.raises(ModelError, match="non-negative integer"):
        fitted.sample(-1)
