import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from tabsynth.errors import ModelError
from tabsynth.models.base import create_model, save_model
from tabsynth.rules.conditions import Compare
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import contract_table

QUICK = {"epochs": 2, "threads": 1}
LOAD_AND_SAMPLE = """
import sys
from tabsynth.models.base import load_model
for folder in sys.argv[1:]:
    print(load_model(folder)[0].sample(50, rng=7).to_csv(index=False), end="\\0")
"""


def fitted(name: str, table: pd.DataFrame | None = None, **params):
    raw = contract_table() if table is None else table
    schema = infer_schema(raw)
    model = create_model(name, **(QUICK | params)).fit(conform(raw, schema), schema, rng=0)
    return model, schema


@pytest.mark.slow
def test_saved_folders_sample_the_same_rows_in_a_fresh_process(tmp_path):
    expected = {}
    for name in ("ctgan", "tvae"):
        model, schema = fitted(name)
        save_model(model, schema, tmp_path / name)
        expected[tmp_path / name] = model.sample(50, rng=7).to_csv(index=False)
    fresh = subprocess.run([sys.executable, "-c", LOAD_AND_SAMPLE, *map(str, expected)],
                           capture_output=True, text=True, check=True)
    assert fresh.stdout.split("\0")[:-1] == list(expected.values())


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_stops_early_on_a_table_learnt_at_once(name):
    constant = pd.DataFrame({"ward": ["icu"] * 200, "insured": [True] * 200})
    model, _ = fitted(name, constant, epochs=50, patience=3)
    assert len(model.history_) == 4  # epoch 0 scores a perfect 0, three more fail to beat it
    assert model.best_epoch_ == 0
    assert model.history_[0]["score"] == 0.0


def test_fitting_and_sampling_leave_torch_global_state_alone():
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    model, _ = fitted("ctgan", threads=max(threads - 1, 1) if threads > 1 else 2)
    model.sample(10, rng=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_missing_values_come_back_at_their_share():
    raw = contract_table(n=600)
    model, _ = fitted("tvae", raw, epochs=30, batch_size=100)
    sample = model.sample(2000, rng=1)
    assert sample["income"].isna().mean() == pytest.approx(raw["income"].isna().mean(), abs=0.06)
    assert 0 < sample["grade"].isna().mean() < 0.2


def test_a_budget_is_refused():
    raw = contract_table()
    schema = infer_schema(raw)
    with pytest.raises(ModelError, match="not differentially private"):
        create_model("ctgan").fit(conform(raw, schema), schema, budget=1.0)


def test_tvae_refuses_conditions():
    model, _ = fitted("tvae")
    with pytest.raises(ModelError, match="use tabsynth.sample.conditional"):
        model.sample(5, conditions={"grade": "A"})


def test_ctgan_meets_a_discrete_condition_through_its_conditional_vector():
    model, _ = fitted("ctgan")
    assert (model.sample(100, conditions=Compare("grade", "==", "C"), rng=0)["grade"] == "C").all()
    assert model.sample(100, conditions={"smoker": True}, rng=0)["smoker"].all()
    unconditioned = model.sample(100, rng=0)
    assert model.sample(100, conditions=Compare("age", ">", 50), rng=0).equals(unconditioned)


@pytest.mark.parametrize("params, problem", [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"generator_dim": [64, -1]}, "generator_dim must be a list of positive integers"),
    ({"batch_size": 105}, r"batch_size \(105\) must be a multiple of pac \(10\)"),
    ({"device": "tpu"}, "device must be 'auto', 'cpu' or 'cuda'"),
    ({"generator_lr": 0}, "generator_lr must be a positive number"),
])
def test_bad_parameters_are_named(params, problem):
    raw = contract_table(n=50)
    schema = infer_schema(raw)
    with pytest.raises(ModelError, match=problem):
        create_model("ctgan", **params).fit(conform(raw, schema), schema, rng=np.random.default_rng(0))


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_a_table_of_numbers_only_has_no_condition_to_draw(name):
    rng = np.random.default_rng(0)
    numbers = pd.DataFrame({"height": rng.normal(170, 10, 200).round(1), "weight": rng.normal(70, 8, 200).round(1)})
    model, _ = fitted(name, numbers, epochs=1)
    sample = model.sample(100, rng=0)
    assert sample["height"].between(numbers["height"].min(), numbers["height"].max()).all()


SPANS = [(1, "tanh"), (3, "softmax"), (1, "tanh"), (5, "softmax")]  # columns 0 | 1-3 | 4 | 5-9


def span_layout():
    from tabsynth.models.sdv.transformer import SpanInfo, SpanLayout

    return SpanLayout.of([SpanInfo(dim, activation) for dim, activation in SPANS])


def test_activation_is_tanh_or_a_softmax_within_each_one_hot_span_even_for_far_apart_logits():
    from tabsynth.models.sdv.transformer import activate

    raw = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 50
    raw[:, 5:] -= 400  # a span whose logits sit far below another's must not underflow
    values = activate(raw, span_layout())
    assert torch.isfinite(values).all()
    assert torch.equal(values[:, [0, 4]], torch.tanh(raw[:, [0, 4]]))
    for block in (values[:, 1:4], values[:, 5:]):
        assert torch.allclose(block.sum(dim=1), torch.ones(64)) and (block >= 0).all()


def test_condition_loss_is_the_cross_entropy_of_the_span_each_row_was_conditioned_on():
    from tabsynth.models.sdv.transformer import condition_loss

    raw = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    picked, categories = torch.tensor([0, 1, 1, 0, 1, 0]), torch.tensor([2, 4, 0, 0, 1, 1])
    blocks = {0: slice(1, 4), 1: slice(5, 10)}
    expected = torch.stack([torch.nn.functional.cross_entropy(raw[i, blocks[int(p)]], categories[i])
                            for i, p in enumerate(picked)]).mean()
    assert torch.allclose(condition_loss(raw, span_layout(), picked, categories), expected)
