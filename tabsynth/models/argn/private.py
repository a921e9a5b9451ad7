"""The privacy side of `dp-argn`: splitting the budget, paying for column domains, planning DP-SGD, the report.

One accountant covers every step, as in `dp-ctgan`: the schema facts paid before the model (`Budget.prior`),
column domains where the user declared none (`privacy.preprocess`) and the noisy row count are zCDP, which is
(α, ρα)-RDP at every order α; DP-SGD with Poisson sampling adds opacus's RDP curve of the subsampled Gaussian;
the sum is converted to (ε, δ) once (Balle et al. 2020). Category thresholding adds its own δ.
Composing in RDP instead of adding two ε leaves DP-SGD more of the budget, hence less noise.
The sample rate is set from the noisy row count, so the true count is never used to plan training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.models.argn.encoding import DomainTokens, TableTokens
from tabsynth.models.argn.training import DPSettings
from tabsynth.privacy import dpsgd
from tabsynth.privacy.accounting import gaussian_sigma, zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource, measure_counts
from tabsynth.privacy.preprocess import Charge, category_warnings, domain_mechanisms, fit_encoding
from tabsynth.table.schema import Column

ACCOUNTING = ("RDP: the zCDP mechanisms (schema facts, domains, row count) count ρ·α at order α, DP-SGD with "
              "Poisson sampling its opacus RDP curve; the sum is converted to (ε, δ) once by Balle et al. 2020; "
              "category thresholding adds its δ")
SAFETY = 1.0 - 1e-9  # plan a hair under the budget so rounding never reports more than was granted
THRESHOLD_DELTA_SHARE = 0.25  # of δ, when some category list is measured; the rest is the RDP conversion's


@dataclass(frozen=True)
class BudgetSplit:
    epsilon: float  # the whole ε, spent by the composition of all steps
    preprocess_rho: float  # the model's own zCDP mechanisms (domains, histograms, row count)
    prior_rho: float  # already spent before the model (schema facts)
    conversion_delta: float  # δ of the one RDP → (ε, δ) conversion
    threshold_delta: float  # δ of category thresholding


def split_budget(budget: Budget, columns: list[Column], share: float) -> BudgetSplit:
    """Preprocessing gets `share` of the ρ that (ε, conversion δ) would buy in zCDP alone; the budget's `prior`
    (schema facts) comes on top; DP-SGD gets what the composition leaves. δ: a quarter to category thresholds
    when some category list is measured, the rest (less any δ the prior spent) to the conversion."""
    thresholds = any(c.kind == "categorical" and domain_mechanisms(c) for c in columns)
    threshold_delta = THRESHOLD_DELTA_SHARE * budget.delta if thresholds else 0.0
    conversion_delta = budget.delta - threshold_delta - sum(charge.delta for charge in budget.prior)
    if conversion_delta <= 0:
        raise ModelError("the schema facts take the whole delta; raise delta")
    whole_rho = zcdp_rho(budget.epsilon, conversion_delta)
    preprocess_rho = SAFETY * share * whole_rho
    if preprocess_rho + budget.prior_rho >= whole_rho:
        raise ModelError("the schema facts and column domains take the whole budget; raise epsilon")
    return BudgetSplit(SAFETY * budget.epsilon, preprocess_rho, budget.prior_rho, conversion_delta, threshold_delta)


@dataclass(frozen=True)
class PrivateStart:
    """What dp-argn learns from the private table before DP-SGD, all with DP."""

    tokens: TableTokens
    rows: int  # the noisy row count
    marginals: list[np.ndarray]  # each column's noisy counts over its token, for calibration (post-processing)
    charges: list[Charge]
    warnings: list[str]  # DP losses (values clipped by a DP range, categories merged or dropped)


def private_tokens(table: pd.DataFrame, columns: list[Column], split: BudgetSplit, noise: RandomSource, *,
                   bins: int, binning: str) -> PrivateStart:
    """Column domains, each column's one-way marginal over its token and the noisy row count, from public facts
    where given and paid for otherwise.

    Each mechanism (a category list, a bound, a column's histogram, the row count) gets an equal share of the
    preprocessing ρ; a quantile-binned column's fine histogram gives its marginal too, at no further cost."""
    domains = sum(domain_mechanisms(c) for c in columns)
    share = split.preprocess_rho / (domains + len(columns) + 1)
    sigma = gaussian_sigma(share)
    prepared = fit_encoding(table, columns, rho=share * domains, delta=split.threshold_delta, noise=noise,
                            histogram_sigma=sigma, bins=bins, binning=binning)
    tokens = TableTokens(tuple(DomainTokens(codec) for codec in prepared.encoding.codecs))
    codes, marginals, charges = tokens.encode(table), [], list(prepared.charges)
    for c, codec in enumerate(prepared.encoding.codecs):
        if codec.name in prepared.one_way and prepared.one_way[codec.name].noisy.size == codec.size:
            marginals.append(prepared.one_way[codec.name].noisy)
            continue
        measured = measure_counts(np.bincount(codes[:, c], minlength=codec.size), sigma, ("marginal", codec.name),
                                  noise)
        marginals.append(measured.noisy)
        charges.append(Charge(measured.record() | {"mechanism": "discrete Gaussian"}, measured.rho))
    count = measure_counts(np.array([len(table)]), sigma, ("rows",), noise)
    charges.append(Charge(count.record() | {"mechanism": "discrete Gaussian"}, count.rho))
    warnings = prepared.warnings + category_warnings(columns, prepared.encoding.codecs, marginals)
    return PrivateStart(tokens, max(1, int(count.noisy[0])), marginals, charges, warnings)


def plan_dpsgd(split: BudgetSplit, rows: int, batch_size: int, epochs: int, max_grad_norm: float) -> DPSettings:
    """The smallest noise multiplier that keeps `epochs` passes of Poisson-sampled batches, composed with every
    zCDP measurement, within the budget."""
    sample_rate = min(1.0, batch_size / rows)
    steps = max(1, math.ceil(epochs / sample_rate))
    plan = dpsgd.plan_dpsgd(split.epsilon, split.conversion_delta, split.preprocess_rho + split.prior_rho,
                            sample_rate, steps, None)
    return DPSettings(plan.noise_multiplier, sample_rate, plan.steps, max_grad_norm)


def privacy_report(split: BudgetSplit, charges: list[Charge], dp: DPSettings, noise: RandomSource) -> dict:
    """`privacy_` of a fitted model: what was spent, how it was counted, every measurement (`charges` includes
    the budget's prior)."""
    rho = sum(c.rho for c in charges)
    history = [(dp.noise_multiplier, dp.sample_rate, dp.steps)]
    sgd = {"what": ["dp-sgd", "network weights"], "mechanism": "DP-SGD (opacus, Poisson sampling, flat clipping)",
           "noise_multiplier": dp.noise_multiplier, "sample_rate": dp.sample_rate, "steps": dp.steps,
           "max_grad_norm": dp.max_grad_norm, "delta": split.conversion_delta,
           "dpsgd_epsilon": dpsgd.composed_epsilon(0.0, history, split.conversion_delta)}
    return {"epsilon": dpsgd.composed_epsilon(rho, history, split.conversion_delta),
            "delta": split.conversion_delta + sum(c.delta for c in charges), "rho": rho,
            "accounting": ACCOUNTING, "measurements": [c.record for c in charges] + [sgd],
            "noise": noise.describe()}
