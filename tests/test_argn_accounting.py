"""dp-argn's accounting: schema facts, domains, marginals, the row count (zCDP) and DP-SGD composed in one RDP
curve; and the calibration to the noisy marginals.

A fixed plan's ε is pinned to a value (as opacus's tests do) and checked against an independent computation of
the subsampled Gaussian's RDP (Mironov, Talwar & Zhang 2019, integer orders) written here from the formula.
"""

import math

import numpy as np
import pytest
import torch

from tabsynth.errors import ModelError
from tabsynth.models.argn.generation import calibrate_to_marginals, generate
from tabsynth.models.argn.network import ARGNetwork
from tabsynth.models.argn.private import plan_dpsgd, split_budget
from tabsynth.privacy.accounting import dpsgd_epsilon, dpsgd_noise_multiplier, zcdp_epsilon, zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.dpsgd import composed_epsilon
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.privacy.preprocess import Charge
from tabsynth.table.schema import Column

# dp-argn's default plan on the Adult benchmark before composition: preprocessing ρ, DP-SGD's noise multiplier,
# sample rate (1024 of 26,051 noisy rows) and steps (5 epochs); ε = 1 split by adding the two ε.
RHO, SIGMA, RATE, STEPS = 0.001360211125040022, 4.0234375, 0.039307512187631954, 128
DELTA, THRESHOLD_DELTA = 1e-9, 2.5e-10


def independent_epsilon(rho: float, sigma: float, rate: float, steps: int, delta: float) -> float:
    """ε of ρ-zCDP plus `steps` subsampled Gaussians, over integer Rényi orders 2..256 (binomial expansion)."""
    best = math.inf
    for alpha in range(2, 257):
        terms = [math.lgamma(alpha + 1) - math.lgamma(k + 1) - math.lgamma(alpha - k + 1)
                 + (alpha - k) * math.log1p(-rate) + k * math.log(rate) + (k * k - k) / (2 * sigma**2)
                 for k in range(alpha + 1)]
        top = max(terms)
        log_a = top + math.log(sum(math.exp(t - top) for t in terms))
        rdp = steps * log_a / (alpha - 1) + rho * alpha
        best = min(best, rdp + math.log1p(-1 / alpha) - (math.log(delta) + math.log(alpha)) / (alpha - 1))
    return best


def test_a_fixed_plan_composed_costs_less_than_the_sum_of_its_parts():
    summed = zcdp_epsilon(RHO, DELTA / 2 - THRESHOLD_DELTA) + dpsgd_epsilon(SIGMA, RATE, STEPS, DELTA / 2)
    composed = composed_epsilon(RHO, [(SIGMA, RATE, STEPS)], DELTA - THRESHOLD_DELTA)
    assert summed == pytest.approx(0.995032, abs=1e-6)  # opacus planned σ to 0.01 of ε
    assert composed == pytest.approx(0.747968, abs=1e-6)
    assert composed == pytest.approx(independent_epsilon(RHO, SIGMA, RATE, STEPS, DELTA - THRESHOLD_DELTA), abs=1e-9)


def columns() -> list[Column]:
    """A schema with undeclared categories (thresholded lists) and a numerical column without bounds."""
    return [Column("job", "categorical", "object"), Column("age", "numerical", "float64")]


@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")  # the summed plan, opacus alone
def test_the_default_plan_spends_the_budget_once_with_less_noise_than_adding_epsilons():
    budget = Budget(1.0, DELTA, RandomSource.seeded(0))
    split = split_budget(budget, columns(), 0.1)
    plan = plan_dpsgd(split, 26_051, 1024, 5, 1.0)
    spent = composed_epsilon(split.preprocess_rho, [(plan.noise_multiplier, plan.sample_rate, plan.steps)],
                             split.conversion_delta)
    assert 0.98 <= spent <= 1.0 and split.threshold_delta == THRESHOLD_DELTA
    assert split.conversion_delta + split.threshold_delta == pytest.approx(DELTA)
    assert plan.steps == STEPS and plan.sample_rate == pytest.approx(RATE)
    summed_sigma = dpsgd_noise_multiplier(1.0 - zcdp_epsilon(split.preprocess_rho, DELTA / 4), DELTA / 2, RATE, STEPS)
    assert plan.noise_multiplier < 0.8 * summed_sigma


def test_the_schema_facts_are_composed_and_refused_when_they_take_everything():
    budget = Budget(1.0, DELTA, RandomSource.seeded(0))
    facts = Charge({"what": ["value classes", "job"]}, 0.5 * zcdp_rho(1.0, 0.75 * DELTA))
    with_facts = Budget(1.0, DELTA, RandomSource.seeded(0), prior=(facts,))
    split = split_budget(with_facts, columns(), 0.1)
    plan = plan_dpsgd(split, 26_051, 1024, 5, 1.0)
    spent = composed_epsilon(split.preprocess_rho + facts.rho,
                             [(plan.noise_multiplier, plan.sample_rate, plan.steps)], split.conversion_delta)
    assert spent <= 1.0 and split.prior_rho == facts.rho
    without_facts = plan_dpsgd(split_budget(budget, columns(), 0.1), 26_051, 1024, 5, 1.0)
    assert plan.noise_multiplier > without_facts.noise_multiplier
    greedy = Budget(1.0, DELTA, RandomSource.seeded(0), prior=(Charge({}, zcdp_rho(1.0, 0.75 * DELTA)),))
    with pytest.raises(ModelError, match="take the whole budget"):
        split_budget(greedy, columns(), 0.1)


def test_calibration_moves_the_sampled_marginals_to_the_noisy_ones():
    """Post-processing: an untrained network's sampled frequencies end near the given counts, column by column."""
    network = ARGNetwork([3, 2], [0, 1], embedding=4, hidden=8, layers=1)
    marginals = [np.array([700, 200, 100]), np.array([-5, 300])]  # a negative noisy count means share 0
    allowed = [np.ones(3, dtype=bool), np.ones(2, dtype=bool)]
    generator = torch.Generator().manual_seed(0)
    calibrate_to_marginals(network, marginals, allowed, generator, torch.device("cpu"))
    codes = generate(network, 20_000, [0, 1], [slice(0, 1), slice(1, 2)], allowed, generator, torch.device("cpu"))
    assert np.bincount(codes[:, 0], minlength=3) / 20_000 == pytest.approx([0.7, 0.2, 0.1], abs=0.02)
    assert np.bincount(codes[:, 1], minlength=2)[0] / 20_000 < 0.01
