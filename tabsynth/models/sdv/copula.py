"""`copula`: SDV's Gaussian copula (the `copulas` engine) over tabsynth's empirical marginals.

SDV fits parametric marginals (beta by default), which bend skewed and zero-inflated columns.
Here every column is first mapped to uniform scores by its empirical marginal, so the copula
only has to learn the dependence; sampling maps back through the same marginals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from copulas.multivariate import GaussianMultivariate
from copulas.univariate import UniformUnivariate

from tabsynth.errors import ModelError
from tabsynth.models.base import pack_states
from tabsynth.models.marginals import DEFAULT_KNOTS, Marginal, fit_marginal, to_uniform
from tabsynth.schema import Schema

_UNIVARIATE_TYPE = "copulas.univariate.uniform.UniformUnivariate"
_MULTIVARIATE_TYPE = "copulas.multivariate.gaussian.GaussianMultivariate"


class GaussianCopula:
    name = "copula"

    def __init__(self, *, max_knots: int = DEFAULT_KNOTS):
        self.max_knots = max_knots

    def get_params(self) -> dict:
        return {"max_knots": self.max_knots}

    def fit(self, table: pd.DataFrame, schema: Schema, *, budget=None, rng=None) -> GaussianCopula:
        if budget is not None:
            raise ModelError("model 'copula' is not differentially private; choose a DP model to spend a budget")
        if not isinstance(self.max_knots, int) or self.max_knots < 2:
            raise ModelError(f"model 'copula': max_knots must be an integer >= 2, got {self.max_knots!r}")
        rng = np.random.default_rng(rng)
        columns = schema.modelled()
        self.marginals_ = [fit_marginal(c, table[c.name], self.max_knots) for c in columns]
        if not columns:
            self.copula_ = None
            return self
        scores = pd.DataFrame({c.name: to_uniform(c, table[c.name], rng) for c in columns})
        self.copula_ = GaussianMultivariate(distribution=UniformUnivariate)
        self.copula_.fit(scores)
        return self

    def sample(self, n: int | None = None, *, conditions=None, rng=None) -> pd.DataFrame:
        if conditions:
            raise ModelError("model 'copula' does not take conditions yet")
        if n is None or n < 0:
            raise ModelError("model 'copula': give the number of rows to sample")
        rng = np.random.default_rng(rng)
        if self.copula_ is None:
            return pd.DataFrame(index=range(n))
        self.copula_.set_random_state(int(rng.integers(2**32 - 1)))
        scores = self.copula_.sample(n) if n else pd.DataFrame(columns=[m.name for m in self.marginals_])
        return pd.DataFrame({m.name: m.decode(scores[m.name].to_numpy(float)) for m in self.marginals_})

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        metas, arrays = pack_states(self.marginals_, "m")
        return {"copula": None if self.copula_ is None else self.copula_.to_dict(), "marginals": metas}, arrays

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None:
        self.marginals_ = [
            Marginal.from_state(meta, {k.split("_", 1)[1]: v for k, v in arrays.items() if k.startswith(f"m{i}_")})
            for i, meta in enumerate(state["marginals"])
        ]
        self.copula_ = None if state["copula"] is None else _copula_from_dict(state["copula"])


def _copula_from_dict(data: dict) -> GaussianMultivariate:
    """copulas resolves the `type` strings in its dict by import; allow only the two we wrote."""
    types = [data.get("type")] + [u.get("type") for u in data.get("univariates", [])]
    if types[0] != _MULTIVARIATE_TYPE or any(t != _UNIVARIATE_TYPE for t in types[1:]):
        raise ValueError("copula state names classes other than the Gaussian copula with uniform marginals")
    return GaussianMultivariate.from_dict(data)
