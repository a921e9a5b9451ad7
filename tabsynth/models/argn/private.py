"""The privacy side of `dp-argn`: splitting the budget, paying for column domains, planning DP-SGD, the report.

The budget (ε, δ) is split in two parts added by basic composition:
- preprocessing, in zCDP: column domains where the user declared none (`privacy.preprocess`) and the noisy
  row count, converted to (ε, δ) by Canonne, Kamath & Steinke; category thresholding adds its own δ;
- DP-SGD with Poisson sampling, accounted by opacus's RDP accountant (`privacy.accounting`).
The sample rate is set from the noisy row count, so the true count is never used to plan training.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.models.argn.encoding import DomainTokens, TableTokens
from tabsynth.models.argn.training import DPSettings
from tabsynth.privacy.accounting import dpsgd_epsilon, dpsgd_noise_multiplier, gaussian_sigma, zcdp_epsilon, zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource, measure_counts
from tabsynth.privacy.preprocess import Charge, domain_mechanisms, fit_encoding
from tabsynth.table.schema import Column

ACCOUNTING = ("preprocessing in zCDP (CKS 2020 conversion; category thresholding adds its δ) plus DP-SGD with "
              "Poisson sampling by opacus's RDP accountant, added by basic composition")
SAFETY = 1.0 - 1e-9  # spend a hair under the budget so rounding never reports more than was granted


@dataclass(frozen=True)
class BudgetSplit:
    preprocess_rho: float
    conversion_delta: float  # δ of the zCDP → (ε, δ) conversion of preprocessing
    threshold_delta: float  # δ of category thresholding
    train_epsilon: float
    train_delta: float


def split_budget(budget: Budget, columns: list[Column], share: float) -> BudgetSplit:
    """Preprocessing gets `share` of ε, plus what the budget already paid before the model (its `prior`, in
    zCDP, converted together with preprocessing); δ goes half to DP-SGD, the rest to preprocessing and thresholds."""
    thresholds = any(c.kind == "categorical" and domain_mechanisms(c) for c in columns)
    threshold_delta = budget.delta / 4 if thresholds else 0.0
    conversion_delta = budget.delta / 2 - threshold_delta
    preprocess_rho = SAFETY * zcdp_rho(share * budget.epsilon, conversion_delta)
    preprocess_epsilon = zcdp_epsilon(preprocess_rho + budget.prior_rho, conversion_delta)
    if preprocess_epsilon >= budget.epsilon:
        raise ModelError("the schema facts and column domains take the whole budget; raise epsilon")
    return BudgetSplit(preprocess_rho, conversion_delta, threshold_delta,
                       SAFETY * (budget.epsilon - preprocess_epsilon), budget.delta / 2)


def private_tokens(table: pd.DataFrame, columns: list[Column], split: BudgetSplit, noise: RandomSource, *,
                   bins: int, binning: str) -> tuple[TableTokens, int, list[Charge], list[str]]:
    """Column domains and the noisy row count, from public facts where given and paid for otherwise; also the
    warnings of DP losses (values clipped by a DP range).

    Each mechanism (a category list, a bound, a fine histogram for quantile bins, the row count) gets an equal
    share of the preprocessing ρ."""
    domains = sum(domain_mechanisms(c) for c in columns)
    histograms = sum(c.kind in ("numerical", "datetime") for c in columns) if binning == "quantile" else 0
    share = split.preprocess_rho / (domains + histograms + 1)
    prepared = fit_encoding(table, columns, rho=share * domains, delta=split.threshold_delta, noise=noise,
                            histogram_sigma=gaussian_sigma(share), bins=bins, binning=binning)
    count = measure_counts(np.array([len(table)]), gaussian_sigma(share), ("rows",), noise)
    charges = prepared.charges + [Charge(count.record() | {"mechanism": "discrete Gaussian"}, count.rho)]
    tokens = TableTokens(tuple(DomainTokens(codec) for codec in prepared.encoding.codecs))
    return tokens, max(1, int(count.noisy[0])), charges, prepared.warnings


def plan_dpsgd(split: BudgetSplit, rows: int, batch_size: int, epochs: int, max_grad_norm: float) -> DPSettings:
    """The noise multiplier that keeps `epochs` passes of Poisson-sampled batches within the training budget."""
    sample_rate = min(1.0, batch_size / rows)
    steps = max(1, math.ceil(epochs / sample_rate))
    with _quiet_accountant():
        sigma = dpsgd_noise_multiplier(split.train_epsilon, split.train_delta, sample_rate, steps)
    return DPSettings(sigma, sample_rate, steps, max_grad_norm)


def privacy_report(split: BudgetSplit, charges: list[Charge], dp: DPSettings, noise: RandomSource) -> dict:
    """`privacy_` of a fitted model: what was spent, how it was counted, every measurement."""
    rho = sum(c.rho for c in charges)
    with _quiet_accountant():
        train_epsilon = dpsgd_epsilon(dp.noise_multiplier, dp.sample_rate, dp.steps, split.train_delta)
    sgd = {"what": ["dp-sgd", "network weights"], "mechanism": "DP-SGD (opacus, Poisson sampling, flat clipping)",
           "noise_multiplier": dp.noise_multiplier, "sample_rate": dp.sample_rate, "steps": dp.steps,
           "max_grad_norm": dp.max_grad_norm, "epsilon": train_epsilon, "delta": split.train_delta}
    return {"epsilon": zcdp_epsilon(rho, split.conversion_delta) + train_epsilon,
            "delta": split.conversion_delta + sum(c.delta for c in charges) + split.train_delta,
            "rho": rho, "accounting": ACCOUNTING, "measurements": [c.record for c in charges] + [sgd],
            "noise": noise.describe()}


@contextlib.contextmanager
def _quiet_accountant() -> Iterator[None]:
    """opacus warns when its best Rényi order is the largest it tries: the bound is then valid but not tightest."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        yield
