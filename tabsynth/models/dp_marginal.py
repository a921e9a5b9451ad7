"""`dp-marginal`: differentially private synthetic data from noisy marginals (AIM over a graphical model).

The fit spends its budget in two stages, both in zCDP: column domains (`privacy.preprocess`: DP category
lists, bounds and bins where the user declared none), then AIM's selected marginals of the binned table
(`models.aim`). The model keeps only what those mechanisms released; sampling draws cell codes from the
graphical model and values within each cell, so it is post-processing and costs nothing.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.models import aim
from tabsynth.models.pgm import GraphicalModel
from tabsynth.privacy.accounting import zcdp_epsilon, zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.domains import category_warning
from tabsynth.privacy.preprocess import BINNINGS, domain_mechanisms, fit_encoding
from tabsynth.table.codecs import Encoding
from tabsynth.table.counts import Counts, as_counts
from tabsynth.table.schema import Column, Schema

ACCOUNTING = ("zCDP: the ρ of every mechanism adds up (exponential mechanism ε²/8, discrete Gaussian 1/(2σ²)); "
              "converted to (ε, δ) by Canonne, Kamath & Steinke 2020; category thresholding adds its δ")
THRESHOLD_DELTA_SHARE = 0.5  # of δ, when some category list is measured; the rest is the zCDP conversion's
SAFETY = 1.0 - 1e-9  # spend a hair under the budget so rounding never reports more than was granted


CANDIDATE_BYTES = 4096  # per candidate marginal in AIM's selection: its cells, scores and bookkeeping


class DPMarginal:
    """Parameters: `degree` (largest marginal in the workload), `target` (a label column: every marginal of
    `degree` columns must contain it, all pairs are kept, and the marginals holding it weigh `target_weight`
    times the others in AIM's selection; a release passes its --target here), `rounds` (planned AIM rounds,
    default 2 per column, at least 8), `max_model_mb` (size cap of the graphical model), `bins` and `binning`
    (coarse bins of number and date columns: "quantile" from a noisy histogram, or "uniform"),
    `preprocess_share` (share of the budget for DP domains, when some are not declared), `iterations` /
    `final_iterations` (mirror-descent steps per round / for the final model)."""

    name = "dp-marginal"
    differentially_private = True

    def __init__(self, *, degree: int = 3, target: str | None = None, target_weight: float = aim.TARGET_WEIGHT,
                 rounds: int | None = None, max_model_mb: float = 2.0, bins: int = 16, binning: str = "quantile",
                 preprocess_share: float = 0.1, iterations: int = 100, final_iterations: int = 1000):
        self.degree, self.target, self.rounds, self.max_model_mb = degree, target, rounds, max_model_mb
        self.target_weight = target_weight
        self.bins, self.binning, self.preprocess_share = bins, binning, preprocess_share
        self.iterations, self.final_iterations = iterations, final_iterations

    def get_params(self) -> dict:
        return {"degree": self.degree, "target": self.target, "target_weight": self.target_weight,
                "rounds": self.rounds, "max_model_mb": self.max_model_mb, "bins": self.bins, "binning": self.binning,
                "preprocess_share": self.preprocess_share, "iterations": self.iterations,
                "final_iterations": self.final_iterations}

    def memory_estimate(self, schema: Schema, rows: int) -> int:
        """Bytes to fit: the encoded table, the graphical model, and AIM's candidate marginals, which grow
        as (columns choose degree): a few thousand columns at degree 3 cannot fit in memory."""
        columns = len(schema.modelled())
        candidates = sum(comb(columns, k) for k in range(1, int(self.degree) + 1))
        return rows * columns * 8 * 4 + int(self.max_model_mb * 2**20) * 8 + candidates * CANDIDATE_BYTES

    def fit(self, table: pd.DataFrame | Counts, schema: Schema, *, budget: Budget | None = None,
            rng=None) -> DPMarginal:
        """Fit within `budget`; `rng` is not used (all noise comes from `budget.noise`). `table` is a DataFrame
        or a `Counts` object (such as `DuckDBCounts` for a table larger than memory): only counts are read."""
        if not isinstance(budget, Budget):
            raise ModelError("model 'dp-marginal' is differentially private: give it a privacy budget (epsilon, delta)")
        columns = schema.modelled()
        self._check_params(columns)
        rho, conversion_delta, threshold_delta = _split_budget(budget, columns)
        rho -= budget.prior_rho
        if rho <= 0:
            raise ModelError("model 'dp-marginal': the schema facts took the whole budget; raise epsilon")
        domain_rho = self.preprocess_share * rho if sum(domain_mechanisms(c) for c in columns) else 0.0
        rounds = self.rounds or max(8, 2 * len(columns))
        one_way_sigma = aim.one_way_sigma(rho - domain_rho, len(columns))
        counts = as_counts(table)
        prepared = fit_encoding(counts, columns, rho=domain_rho, delta=threshold_delta, noise=budget.noise,
                                histogram_sigma=one_way_sigma, bins=self.bins, binning=self.binning)
        self.encoding_ = prepared.encoding
        settings = aim.AimSettings(rounds=rounds, max_model_mb=self.max_model_mb, iterations=self.iterations,
                                   final_iterations=self.final_iterations)
        weights = aim.workload([c.name for c in columns], self.degree, self.target, self.target_weight)
        self.model_, aim_charges = aim.run_aim(counts, self.encoding_.codecs, weights, rho - domain_rho,
                                               budget.noise, settings, prepared.one_way)
        charges = list(budget.prior) + prepared.charges + aim_charges
        self.rows_ = max(1, round(self.model_.total))
        spent_rho = sum(c.rho for c in charges)
        self.privacy_ = {"epsilon": zcdp_epsilon(spent_rho, conversion_delta),
                         "delta": conversion_delta + sum(c.delta for c in charges), "rho": spent_rho,
                         "accounting": ACCOUNTING, "measurements": [c.record for c in charges],
                         "noise": budget.noise.describe(),
                         "warnings": prepared.warnings + self._suppressed_warnings(columns)}
        return self

    def _suppressed_warnings(self, columns: list[Column]) -> list[str]:
        """From the fitted model (post-processing): columns whose DP category list merged or dropped many rows."""
        warnings = []
        for column, codec in zip(columns, self.encoding_.codecs, strict=True):
            if column.kind == "categorical" and domain_mechanisms(column):
                warnings += [w for w in [category_warning(codec, self.model_.marginal((codec.name,)))] if w]
        return warnings

    samples_categorical = True  # sample(..., categorical=True): text columns as pandas Categoricals

    def sample(self, n: int | None = None, *, conditions=None, rng=None, categorical: bool = False) -> pd.DataFrame:
        """`n` rows (default: the noisy row count `rows_`); `rng` drives post-processing only. With `categorical`,
        text columns come back as pandas Categoricals of the same values (the streamed writer's fast path)."""
        if conditions:
            raise ModelError("model 'dp-marginal' does not take conditions yet")
        n = self.rows_ if n is None else n
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ModelError(f"model 'dp-marginal': the number of rows must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(rng)
        return self.encoding_.decode(self.model_.sample(int(n), rng), rng, categorical)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        codecs, arrays = self.encoding_.state()
        model_meta, model_arrays = self.model_.state()
        arrays.update({f"model_{key}": value for key, value in model_arrays.items()})
        return {"encoding": codecs, "model": model_meta, "rows": self.rows_, "privacy": self.privacy_}, arrays

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None:
        self.encoding_ = Encoding.from_state(state["encoding"], arrays)
        model_arrays = {key.removeprefix("model_"): value for key, value in arrays.items() if key.startswith("model_")}
        self.model_ = GraphicalModel.from_state(state["model"], model_arrays)
        self.rows_ = int(state["rows"])
        self.privacy_ = state["privacy"]

    def _check_params(self, columns: list[Column]) -> None:
        problems = []
        if not columns:
            problems.append("the table has no modelled columns")
        for name, minimum in (("degree", 1), ("bins", 2), ("iterations", 1), ("final_iterations", 1)):
            if not _is_int(getattr(self, name), minimum):
                problems.append(f"{name} must be an integer >= {minimum}, got {getattr(self, name)!r}")
        if self.rounds is not None and not _is_int(self.rounds, 1):
            problems.append(f"rounds must be None or an integer >= 1, got {self.rounds!r}")
        if not (isinstance(self.max_model_mb, (int, float)) and self.max_model_mb > 0):
            problems.append(f"max_model_mb must be a positive number, got {self.max_model_mb!r}")
        if not (isinstance(self.preprocess_share, (int, float)) and 0 < self.preprocess_share < 1):
            problems.append(f"preprocess_share must be between 0 and 1, got {self.preprocess_share!r}")
        if self.binning not in BINNINGS:
            problems.append(f"binning must be one of {', '.join(BINNINGS)}, got {self.binning!r}")
        if not (isinstance(self.target_weight, (int, float)) and not isinstance(self.target_weight, bool)
                and self.target_weight >= 1):
            problems.append(f"target_weight must be a number >= 1, got {self.target_weight!r}")
        if self.target is not None and self.target not in [c.name for c in columns]:
            problems.append(f"target {self.target!r} is not a modelled column")
        if problems:
            raise ModelError(*[f"model 'dp-marginal': {p}" for p in problems])


def _split_budget(budget: Budget, columns: list[Column]) -> tuple[float, float, float]:
    """(ρ for all mechanisms, δ of the zCDP conversion, δ for category thresholding)."""
    thresholds = any(c.kind == "categorical" and domain_mechanisms(c) for c in columns)
    threshold_delta = THRESHOLD_DELTA_SHARE * budget.delta if thresholds else 0.0
    conversion_delta = budget.delta - threshold_delta
    return SAFETY * zcdp_rho(budget.epsilon, conversion_delta), conversion_delta, threshold_delta


def _is_int(value, minimum: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
