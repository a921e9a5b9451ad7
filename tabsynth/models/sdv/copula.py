"""`copula`: SDV's Gaussian copula (the `copulas` engine) over tabsynth's empirical marginals.

SDV fits parametric marginals (beta by default), which bend skewed and zero-inflated columns.
Here every column is first mapped to uniform scores by its empirical marginal, so the copula
only has to learn the dependence; sampling maps back through the same marginals. A discrete column's
scores are spread at random within its step, which hides most of its dependence (nearly all of it for a
rare class); the correlation is corrected for that spread (`_latent_correlation`). `copulas` fits the
correlation and keeps the saved state; sampling draws from it with numpy directly, in chunks, and finds a
category column's value on the normal scale without the normal CDF.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from copulas.multivariate import GaussianMultivariate
from copulas.univariate import UniformUnivariate
from scipy.special import ndtr, ndtri

from tabsynth.errors import ModelError
from tabsynth.models.marginals import DEFAULT_KNOTS, Marginal, fit_marginal, to_uniform
from tabsynth.table.codecs import pack_states
from tabsynth.table.schema import Schema
from tabsynth.table.threads import map_in_threads

_UNIVARIATE_TYPE = "copulas.univariate.uniform.UniformUnivariate"
_MULTIVARIATE_TYPE = "copulas.multivariate.gaussian.GaussianMultivariate"
MAX_LATENT = 0.97  # corrected correlations are clipped here, short of a deterministic link
MIN_EIGENVALUE = 1e-6
CHUNK_ROWS = 1 << 19  # rows drawn at once: bounds memory for any n, and is as fast as one big draw


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
        shares = [_explained_share(table[c.name], scores[c.name]) if m.categories is not None else 1.0
                  for c, m in zip(columns, self.marginals_, strict=True)]
        self.copula_.correlation = _latent_correlation(self.copula_.correlation, np.array(shares))
        return self

    samples_categorical = True  # sample(..., categorical=True): text columns as pandas Categoricals

    def sample(self, n: int | None = None, *, conditions=None, rng=None, categorical: bool = False) -> pd.DataFrame:
        if conditions:
            raise ModelError("model 'copula' does not take conditions yet")
        if n is None or n < 0:
            raise ModelError("model 'copula': give the number of rows to sample")
        rng = np.random.default_rng(rng)
        if self.copula_ is None:
            return pd.DataFrame(index=range(n))
        factor, low, width = _sampling_form(self.copula_)
        cuts = [_normal_cuts(m, loc, scale) for m, loc, scale in zip(self.marginals_, low, width, strict=True)]
        sizes = _chunk_sizes(int(n))
        starts = np.cumsum([0, *sizes])
        drawn = [np.empty(int(n), dtype=np.intp if m.categories is not None else float) for m in self.marginals_]

        def draw_chunk(piece: tuple[int, np.random.Generator]) -> None:  # a generator per chunk, its own rows
            chunk, chunk_rng = piece
            rows = slice(starts[chunk], starts[chunk + 1])
            normal = factor @ chunk_rng.standard_normal((len(factor), sizes[chunk]))
            for j, marginal in enumerate(self.marginals_):
                drawn[j][rows] = np.searchsorted(cuts[j], normal[j], side="right") - 1 if cuts[j] is not None \
                    else marginal.draw(low[j] + width[j] * ndtr(normal[j]))

        map_in_threads(draw_chunk, zip(range(len(sizes)), rng.spawn(len(sizes)), strict=True))
        columns = {m.name: m.to_series(d, categorical) for m, d in zip(self.marginals_, drawn, strict=True)}
        return pd.DataFrame(columns, copy=False)  # no copy: consolidating 1e6-row blocks costs more than sampling

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        metas, arrays = pack_states(self.marginals_, "m")
        return {"copula": None if self.copula_ is None else self.copula_.to_dict(), "marginals": metas}, arrays

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None:
        self.marginals_ = [
            Marginal.from_state(meta, {k.split("_", 1)[1]: v for k, v in arrays.items() if k.startswith(f"m{i}_")})
            for i, meta in enumerate(state["marginals"])
        ]
        self.copula_ = None if state["copula"] is None else _copula_from_dict(state["copula"])


def _explained_share(values: pd.Series, scores: pd.Series) -> float:
    """Share of a discrete column's normal-score variance that its categories explain; the rest is the random
    spread of each category over its step, which no other column can predict."""
    normal = pd.Series(ndtri(np.clip(scores.to_numpy(float), 1e-12, 1 - 1e-12)))
    means = normal.groupby(values.to_numpy(object), dropna=False).transform("mean")
    total = float(normal.var())
    return float(means.var() / total) if total > 0 else 1.0


def _latent_correlation(observed: pd.DataFrame, shares: np.ndarray) -> pd.DataFrame:
    """The correlation of the latent normals from that of the spread scores.

    A category's scores are spread at random over its step, so a discrete column j correlates with any other
    column k only through its category means: observed = latent x share_j (x share_k, to first order, when k
    is discrete too). For a rare class the share is small (0.12 for a 2% class), so the raw correlation lost
    most of the dependence: rows drawn for the rare class looked like all rows. The corrected matrix is
    clipped and made positive definite again.
    """
    latent = np.clip(observed.to_numpy(float) / np.outer(shares, shares), -MAX_LATENT, MAX_LATENT)
    np.fill_diagonal(latent, 1.0)
    values, vectors = np.linalg.eigh(latent)
    latent = (vectors * np.clip(values, MIN_EIGENVALUE, None)) @ vectors.T
    scale = np.sqrt(np.diag(latent))
    return pd.DataFrame(latent / np.outer(scale, scale), index=observed.index, columns=observed.columns)


def _sampling_form(copula: GaussianMultivariate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What copulas' own sample computes, as arrays: a factor F with F F^T = the correlation matrix, and
    each uniform univariate's (loc, scale), so that scores = loc + scale * Phi(F z) for standard normal z."""
    correlation = copula.correlation.to_numpy(float)
    try:
        factor = np.linalg.cholesky(correlation)
    except np.linalg.LinAlgError:  # only semi-definite (a constant column has a zero row): eigen-decompose
        values, vectors = np.linalg.eigh(correlation)
        factor = vectors * np.sqrt(np.clip(values, 0.0, None))
    params = [u.to_dict() for u in copula.univariates]
    return factor, np.array([p["loc"] for p in params]), np.array([p["scale"] for p in params])


def _normal_cuts(marginal: Marginal, loc: float, scale: float) -> np.ndarray | None:
    """A step marginal's steps moved to the normal scale, where a draw finds its category without the
    normal CDF: u = loc + scale * Phi(z) >= step  <=>  z >= Phi^-1((step - loc) / scale)."""
    if marginal.categories is None or scale <= 0:
        return None
    return ndtri(np.clip((marginal.steps() - loc) / scale, 0.0, 1.0))


def _chunk_sizes(n: int) -> list[int]:
    """Rows per chunk: a chunk's normal draws take CHUNK_ROWS x columns x 8 bytes, twice while mixed."""
    return [min(CHUNK_ROWS, n - start) for start in range(0, max(n, 1), CHUNK_ROWS)]  # n = 0: one empty chunk


def _copula_from_dict(data: dict) -> GaussianMultivariate:
    """copulas resolves the `type` strings in its dict by import; allow only the two we wrote."""
    types = [data.get("type")] + [u.get("type") for u in data.get("univariates", [])]
    if types[0] != _MULTIVARIATE_TYPE or any(t != _UNIVARIATE_TYPE for t in types[1:]):
        raise ValueError("copula state names classes other than the Gaussian copula with uniform marginals")
    return GaussianMultivariate.from_dict(data)
