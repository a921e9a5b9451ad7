import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from tabsynth.errors import InputError, ModelError
from tabsynth.models.argn.encoding import NumberTokens, fit_number_tokens
from tabsynth.models.base import REGISTRY, create_model, load_model, save_model
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.rules.parser import parse_condition
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Column, Schema
from tabsynth.testing import contract_table

SMALL = {"epochs": 4, "hidden": 16, "embedding": 4}
TARGETS = {"argn": ("tabsynth.models.argn.model", "ARGN", False),
           "dp-argn": ("tabsynth.models.argn.model", "DPARGN", True)}


@pytest.fixture(scope="module")
def table():
    raw = contract_table(400)
    schema = infer_schema(raw)
    return conform(raw, schema), schema


@pytest.fixture(scope="module")
def fitted(table):
    data, schema = table
    return create_model("argn", epochs=30, batch_size=32, hidden=32, patience=30).fit(data, schema, rng=0)


def budget(seed: int = 5) -> Budget:
    return Budget(1.0, 1e-6, RandomSource.seeded(seed))


def test_registry_names_the_agreed_classes():
    assert all(REGISTRY[name][:3] == target for name, target in TARGETS.items())


def test_a_condition_is_met_without_rejection(fitted, table):
    data, schema = table
    before = fitted.rows_generated
    old = fitted.sample(120, conditions=parse_condition("age >= 65", schema), rng=1)
    assert len(old) == 120 and (old["age"] >= 65).all()
    assert fitted.rows_generated - before == 120, "the network drew exactly the rows asked for"
    everyone = fitted.sample(400, rng=1)
    assert old["income"].mean() > everyone["income"].mean() + 5_000, "income follows age in the real table"


def test_conditions_on_several_columns_and_missing_values(fitted, table):
    data, schema = table
    rows = fitted.sample(80, conditions=parse_condition("grade is null and smoker == true and visits in [1, 2]",
                                                        schema), rng=2)
    assert rows["grade"].isna().all() and rows["smoker"].all() and rows["visits"].isin([1, 2]).all()
    tied = fitted.sample(50, conditions=parse_condition("age < 40 and visits < age", schema), rng=3)
    assert len(tied) == 50 and (tied["age"] < 40).all() and (tied["visits"] < tied["age"]).all()


def test_an_impossible_condition_is_one_clear_error(fitted, table):
    _, schema = table
    with pytest.raises(InputError, match="cannot be met.*'age'"):
        fitted.sample(10, conditions=parse_condition("age > 500", schema), rng=0)


def test_fit_is_deterministic_and_leaves_torch_global_state_alone(table):
    data, schema = table
    threads, rng_state = torch.get_num_threads(), torch.get_rng_state()
    first = create_model("argn", **SMALL).fit(data, schema, rng=7)
    second = create_model("argn", **SMALL).fit(data, schema, rng=7)
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng_state)
    arrays_a, arrays_b = first.get_state()[1], second.get_state()[1]
    assert all(np.array_equal(arrays_a[key], arrays_b[key]) for key in arrays_a)
    assert first.sample(100, rng=1).equals(second.sample(100, rng=1))


def test_progress_is_reported_after_every_epoch(table):
    data, schema = table
    records = []
    model = create_model("argn", **SMALL).fit(data, schema, rng=0, progress=records.append)
    assert records == model.history_ and {"epoch", "epochs", "loss", "val_loss"} <= set(records[0])


def test_dp_argn_spends_no_more_than_its_budget(table):
    data, schema = table
    model = create_model("dp-argn", **SMALL, batch_size=64).fit(data, schema, budget=budget(), rng=0)
    privacy = model.privacy_
    assert 0 < privacy["epsilon"] <= 1.0 and privacy["delta"] <= 1e-6
    sgd = privacy["measurements"][-1]
    assert sgd["what"][0] == "dp-sgd" and sgd["noise_multiplier"] > 0 and sgd["steps"] >= 1
    assert any(m["what"] == ["rows"] for m in privacy["measurements"])
    assert privacy["noise"]["kind"] == "seeded" and model.rows_ >= 1
    assert len(model.sample(rng=0)) == model.rows_, "the default row count is the noisy one"
    smokers = model.sample(40, conditions=parse_condition("smoker == true", schema), rng=0)
    assert len(smokers) == 40 and smokers["smoker"].all()


def test_dp_argn_reads_no_private_facts_from_the_schema(table):
    data, schema = table
    blind = Schema.from_dict(schema.public())
    blind = Schema(tuple(dataclasses.replace(c, missing=0.5) for c in blind.columns))
    runs = [create_model("dp-argn", **SMALL, batch_size=64).fit(data, s, budget=budget(9), rng=0).sample(50, rng=0)
            for s in (schema, blind)]
    assert runs[0].equals(runs[1])


def test_dp_argn_needs_a_budget_and_argn_refuses_one(table):
    data, schema = table
    with pytest.raises(ModelError, match="give it a privacy budget"):
        create_model("dp-argn", **SMALL).fit(data, schema, rng=0)
    with pytest.raises(ModelError, match="not differentially private"):
        create_model("argn", **SMALL).fit(data, schema, budget=budget(), rng=0)


def test_bad_parameters_are_named(table):
    data, schema = table
    with pytest.raises(ModelError) as caught:
        create_model("argn", epochs=0, flexible=2.0).fit(data, schema, rng=0)
    assert [p.split(": ")[1].split(" must")[0] for p in caught.value.problems] == ["epochs", "flexible"]


def test_a_saved_folder_with_a_pickle_is_refused(fitted, table, tmp_path):
    _, schema = table
    save_model(fitted, schema, tmp_path)
    loaded, _ = load_model(tmp_path)
    assert loaded.sample(30, rng=4).equals(fitted.sample(30, rng=4))
    (tmp_path / "weights.bin").write_bytes(pickle.dumps(fitted.network_.state_dict()))
    with pytest.raises(ModelError, match="refusing a pickle"):
        load_model(tmp_path)


def test_a_discrete_column_decodes_to_its_real_values_as_often_as_they_occur():
    seats = pd.Series([149] * 16 + [95] * 11 + [140] * 10 + [55] * 8 + [178] * 7 + [20, 20, 330, 260, 145, 189])
    column = Column("seats", "numerical", "int64", discrete=True, decimals=0)
    tokens = fit_number_tokens(column, seats, rare_threshold=5, bins=100, sub_bins=50)
    assert not tokens.exact.all()  # some cells hold several values: a uniform draw made 150, 151, ... 177
    codes = tokens.encode(seats.sample(20_000, replace=True, random_state=0))
    drawn = tokens.decode(codes, np.random.default_rng(0))
    assert set(drawn) == set(seats)
    shares = seats.value_counts(normalize=True)
    common = shares[seats.value_counts() >= 5]
    assert drawn.value_counts(normalize=True).reindex(common.index).subtract(common).abs().max() < 0.01
    weights = dict(zip(tokens.values, tokens.counts, strict=True))  # as for categories: rare values alike
    assert weights[20] == weights[330] == weights[145] and weights[149] == 16
    meta, arrays = tokens.state()
    loaded = NumberTokens.from_state(meta, arrays)
    pd.testing.assert_series_equal(loaded.decode(codes, np.random.default_rng(1)),
                                   tokens.decode(codes, np.random.default_rng(1)))
