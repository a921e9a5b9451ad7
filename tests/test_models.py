import dataclasses
import json
import pickle

import numpy as np
import pytest

from tabsynth.errors import ModelError
from tabsynth.models.base import REGISTRY, create_model, load_model, save_model
from tabsynth.models.dp_marginal import DPMarginal
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import check_synthesizer, contract_table

# Small settings so the neural models train in seconds; the contract is the same at any size.
QUICK = {"ctgan": {"epochs": 2}, "tvae": {"epochs": 2}, "argn": {"epochs": 2}, "dp-ctgan": {"epochs": 2},
         "dp-argn": {"epochs": 2}}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_model_passes_the_contract(name):
    """The one run of the contract per model: the contract table and every edge table (tabsynth.testing)."""
    check_synthesizer(name, QUICK.get(name))


class Overspender(DPMarginal):
    """A broken DP model: it fits on a larger allowance than the one it is handed, and says so in privacy_."""

    name = "dp-overspender"
    stretch: dict = {}

    def fit(self, table, schema, *, budget=None, rng=None):
        return super().fit(table, schema, budget=dataclasses.replace(budget, **{
            fact: getattr(budget, fact) * factor for fact, factor in self.stretch.items()}), rng=rng)


@pytest.mark.parametrize("stretch, complaint", [
    ({"epsilon": 2.0}, r"spent epsilon 2 > budget 1"),
    ({"delta": 10.0}, r"spent delta 1e-05 > budget 1e-06"),
])
def test_the_contract_refuses_a_model_that_overspends(monkeypatch, stretch, complaint):
    monkeypatch.setattr(Overspender, "stretch", stretch)
    entry = REGISTRY["dp-marginal"]._replace(module=__name__, cls=Overspender.__name__)
    monkeypatch.setitem(REGISTRY, Overspender.name, entry)
    with pytest.raises(AssertionError, match=f"dp-overspender on the contract table: {complaint}"):
        check_synthesizer(Overspender.name)


def test_unknown_model_and_bad_parameters_are_model_errors():
    with pytest.raises(ModelError, match="unknown model 'gan9000'; choose one of: argn, copula, ctgan"):
        create_model("gan9000")
    with pytest.raises(ModelError, match="bad parameter"):
        create_model("copula", knots_please=3)


@pytest.fixture
def saved(tmp_path):
    raw = contract_table()
    schema = infer_schema(raw)
    model = create_model("copula").fit(conform(raw, schema), schema, rng=0)
    save_model(model, schema, tmp_path)
    return tmp_path


def test_folder_with_a_pickle_is_refused(saved):
    (saved / "extra.bin").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelError, match="refusing a pickle"):
        load_model(saved)


def test_tampered_arrays_are_refused(saved):
    data = bytearray((saved / "arrays.npz").read_bytes())
    data[-30] ^= 0xFF
    (saved / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="hash does not match"):
        load_model(saved)


def test_unknown_format_version_is_refused(saved):
    document = json.loads((saved / "model.json").read_text())
    document["format_version"] = 99
    (saved / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="unknown format version 99"):
        load_model(saved)


def test_copula_state_cannot_name_other_classes(saved):
    document = json.loads((saved / "model.json").read_text())
    document["state"]["copula"]["univariates"][0]["type"] = "os.system"
    (saved / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="corrupt"):
        load_model(saved)


def test_copula_keeps_marginals_and_dependence(adult):
    schema = infer_schema(adult)
    data = conform(adult, schema)
    synthetic = create_model("copula").fit(data, schema, rng=0).sample(len(data), rng=1)
    assert abs(synthetic["age"].mean() - data["age"].mean()) < 1.0
    assert abs((synthetic["capital-gain"] == 0).mean() - (data["capital-gain"] == 0).mean()) < 0.02
    real_corr = data["age"].corr(data["hours-per-week"])
    assert abs(synthetic["age"].corr(synthetic["hours-per-week"]) - real_corr) < 0.05
    share = synthetic["workclass"].isna().mean()
    assert share == pytest.approx(data["workclass"].isna().mean(), abs=0.01)
    assert set(synthetic["native-country"].dropna()) <= set(data["native-country"].dropna())
    assert np.isin(synthetic["education-num"], data["education-num"].unique()).all()
