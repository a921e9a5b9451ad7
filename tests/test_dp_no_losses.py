"""A DP model's training loss is a noise-free statistic of the real rows: it is never saved nor printed."""

import json

import pytest

from tabsynth.models.base import create_model, save_model
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import contract_table

TINY = {
    "dp-argn": {"epochs": 1, "batch_size": 64, "hidden": 8, "embedding": 4, "threads": 1, "verbose": True},
    "dp-ctgan": {"epochs": 1, "batch_size": 64, "embedding_dim": 4, "generator_dim": [8], "discriminator_dim": [8],
                 "threads": 1, "verbose": True},
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_dp_model_saves_and_prints_no_loss(name, tmp_path, capfd):
    raw = contract_table(200)
    schema = infer_schema(raw)
    records = []
    fit_options = {"progress": records.append} if name == "dp-argn" else {}
    model = create_model(name, **TINY[name]).fit(conform(raw, schema), schema,
                                                 budget=Budget(2.0, 1e-6, RandomSource.seeded(3)), rng=0, **fit_options)
    save_model(model, schema, tmp_path / "model")
    printed = capfd.readouterr()
    saved = (tmp_path / "model" / "model.json").read_text()
    assert "loss" not in saved and "history" not in json.loads(saved)["state"]
    assert "loss" not in (printed.out + printed.err).lower()
    assert "epoch" in printed.out + printed.err or "step" in printed.out + printed.err  # progress still shows
    assert all(set(record) <= {"epoch", "epochs", "steps"} for record in records)
