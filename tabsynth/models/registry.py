"""Every synthesizer `--model` accepts: one explicit dict, name -> where its class lives and what it is.

Listing the models reads this dict only; a model's module (and torch, opacus or the SDV packages behind it) is
imported when the model is created, so `import tabsynth` and `tabsynth models` stay light.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from tabsynth.errors import ModelError


class ModelEntry(NamedTuple):
    module: str
    cls: str
    private: bool  # differentially private: must equal the class's `differentially_private` (checked on load)
    description: str


REGISTRY: dict[str, ModelEntry] = {
    "copula": ModelEntry("tabsynth.models.sdv.copula", "GaussianCopula", False,
                         "Gaussian copula over empirical marginals (SDV's copulas engine); fits any table in seconds"),
    "ctgan": ModelEntry("tabsynth.models.sdv.ctgan", "CTGAN", False,
                        "conditional tabular GAN (ctgan's networks, torch)"),
    "tvae": ModelEntry("tabsynth.models.sdv.ctgan", "TVAE", False,
                       "tabular variational autoencoder (ctgan's networks, torch)"),
    "argn": ModelEntry("tabsynth.models.argn.model", "ARGN", False,
                       "autoregressive tabular network (torch); conditions on any columns"),
    "dp-marginal": ModelEntry("tabsynth.models.dp_marginal", "DPMarginal", True,
                              "noisy marginals (AIM) over a graphical model; scales out with DuckDB and Spark"),
    "dp-ctgan": ModelEntry("tabsynth.models.dp_ctgan", "DPCTGAN", True,
                           "CTGAN-style GAN whose discriminator is trained by DP-SGD (opacus)"),
    "dp-argn": ModelEntry("tabsynth.models.argn.model", "DPARGN", True,
                          "the argn network trained by DP-SGD"),
}


def model_entry(name: str) -> ModelEntry:
    """The registry's entry for `name`; an unknown name is a ModelError listing the known ones."""
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def model_class(name: str) -> type:
    """Import and return the class registered as `name`."""
    entry = model_entry(name)
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    if bool(getattr(cls, "differentially_private", False)) != entry.private:
        raise ModelError(f"model {name!r}: the registry says differentially private is {entry.private}, "
                         f"but {entry.module}.{entry.cls} says otherwise")
    return cls


def create_model(name: str, **params):
    """A new, unfitted model `name` with keyword parameters `params` (a bad one is a ModelError)."""
    cls = model_class(name)
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: bad parameter ({exc})") from None
    if hasattr(model, "check_params"):  # a bad value fails here, before a row is read or a budget spent
        model.check_params()
    return model
