import math

import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from tabsynth.privacy.accounting import (
    dpsgd_epsilon,
    dpsgd_noise_multiplier,
    exponential_epsilon,
    exponential_rho,
    gaussian_rho,
    gaussian_sigma,
    zcdp_epsilon,
    zcdp_rho,
)

RHOS = [1e-6, 1e-3, 0.01, 0.1, 0.5, 1.0, 5.0]
DELTAS = [1e-12, 1e-9, 1e-5, 1e-3, 0.1]


def exact_gaussian_epsilon(sigma: float, delta: float) -> float:
    """The exact (ε, δ) curve of the Gaussian mechanism, sensitivity 1 (Balle & Wang 2018, Theorem 8)."""

    def excess(eps):
        return norm.cdf(0.5 / sigma - eps * sigma) - math.exp(eps) * norm.cdf(-0.5 / sigma - eps * sigma) - delta

    return brentq(excess, 0.0, 100.0) if excess(0.0) > 0 else 0.0


def test_gaussian_rho_is_bun_steinke_formula():
    assert gaussian_rho(2.0) == 0.125  # Δ²/(2σ²), Bun & Steinke 2016, Proposition 1.6
    assert gaussian_rho(2.0, sensitivity=3.0) == 9 / 8
    assert gaussian_sigma(0.125) == pytest.approx(2.0)


def test_exponential_rho_is_bounded_range_bound():
    assert exponential_rho(1.0) == 0.125  # ε²/8, Cesar & Rogers 2021
    assert exponential_epsilon(0.125) == pytest.approx(1.0)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 7.5, 1000.0])
def test_gaussian_sigma_inverts_gaussian_rho(sigma):
    assert gaussian_sigma(gaussian_rho(sigma, 2.0), 2.0) == pytest.approx(sigma, rel=1e-12)
    assert exponential_epsilon(exponential_rho(sigma)) == pytest.approx(sigma, rel=1e-12)


def test_zcdp_epsilon_matches_published_values():
    # OpenDP python tests, test_gaussian_curve: cdp_epsilon(rho=(1/4)^2/2, delta=1e-3) == 0.6880024554878085
    assert zcdp_epsilon(1 / 32, 1e-3) == pytest.approx(0.6880024554878085, rel=1e-9)
    # same test: cdp_delta(rho=(1/4)^2/2, epsilon=0) == 0.1508457845622862, so at that δ, ε is 0
    assert zcdp_epsilon(1 / 32, 0.1508457845622862) == pytest.approx(0.0, abs=1e-9)
    # OpenDP Rust tests, test_edge_cases: zcdp_delta(0.5, 0) == 0.5588356393474351 and zcdp_epsilon of it is 0
    assert zcdp_epsilon(0.5, 0.5588356393474351) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("delta", DELTAS)
def test_zcdp_epsilon_between_exact_gaussian_and_bun_steinke(rho, delta):
    epsilon = zcdp_epsilon(rho, delta)
    # never larger than the classic bound (Bun & Steinke 2016, Proposition 1.3) ...
    assert epsilon <= rho + 2 * math.sqrt(rho * math.log(1 / delta)) + 1e-12
    # ... and never smaller than the true ε of a Gaussian mechanism that is exactly ρ-zCDP
    assert epsilon >= exact_gaussian_epsilon(gaussian_sigma(rho), delta) - 1e-9


@pytest.mark.parametrize("epsilon", [0.01, 0.1, 1.0, 3.0, 10.0, 50.0])
@pytest.mark.parametrize("delta", DELTAS)
def test_zcdp_rho_is_the_largest_rho_within_epsilon(epsilon, delta):
    rho = zcdp_rho(epsilon, delta)
    assert zcdp_epsilon(rho, delta) <= epsilon * (1 + 1e-9)
    assert zcdp_epsilon(rho * (1 + 1e-6), delta) > epsilon


def test_zcdp_epsilon_is_monotone():
    by_rho = [zcdp_epsilon(rho, 1e-6) for rho in RHOS]
    by_delta = [zcdp_epsilon(0.1, delta) for delta in DELTAS]
    assert by_rho == sorted(by_rho) and len(set(by_rho)) == len(by_rho)
    assert by_delta == sorted(by_delta, reverse=True) and len(set(by_delta)) == len(by_delta)


@pytest.mark.parametrize(("rho", "delta"), [(1e-12, 1e-9), (1e4, 1e-300), (5e-30, 1e-13), (0.1, 1e-300)])
def test_zcdp_epsilon_is_robust_at_extremes(rho, delta):
    epsilon = zcdp_epsilon(rho, delta)
    assert math.isfinite(epsilon) and 0 < epsilon <= rho + 2 * math.sqrt(rho * math.log(1 / delta)) + 1e-12


def test_zcdp_edge_values():
    assert zcdp_epsilon(0.0, 1e-5) == 0.0
    assert zcdp_epsilon(math.inf, 1e-5) == math.inf


def test_dpsgd_epsilon_matches_opacus_tests():
    # opacus tests/accountants_test.py, test_rdp_accountant: σ=1.5, q=0.04, 90 epochs, δ=1e-5 → ε = 7.32911117143
    assert dpsgd_epsilon(1.5, 0.04, int(90 / 0.04), 1e-5) == pytest.approx(7.32911117143, abs=1e-6)
    # opacus tests/accountants_test.py, test_prv_accountant: same setting → 6.777395712150674 (PRV eps_error 0.01)
    assert dpsgd_epsilon(1.5, 0.04, int(90 // 0.04), 1e-5, accountant="prv") == pytest.approx(6.7774, abs=0.01)


def test_dpsgd_noise_multiplier_matches_opacus_tests():
    # opacus tests/accountants_test.py, test_get_noise_multiplier_rdp_steps: ε=8, δ=1e-5, q=0.04, 2000 steps
    sigma = dpsgd_noise_multiplier(8.0, 1e-5, 0.04, 2000)
    assert sigma == pytest.approx(1.3562, abs=1e-4)
    assert 7.99 <= dpsgd_epsilon(sigma, 0.04, 2000, 1e-5) <= 8.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gaussian_rho(0.0), "sigma"),
        (lambda: gaussian_rho(1.0, sensitivity=-1.0), "sensitivity"),
        (lambda: gaussian_sigma(math.inf), "rho"),
        (lambda: exponential_rho(float("nan")), "epsilon"),
        (lambda: zcdp_epsilon(-0.1, 1e-5), "rho"),
        (lambda: zcdp_epsilon(0.1, 0.0), "delta"),
        (lambda: zcdp_rho(1.0, 1.0), "delta"),
        (lambda: zcdp_rho(0.0, 1e-5), "epsilon"),
        (lambda: dpsgd_epsilon(1.0, 1.5, 10, 1e-5), "sample_rate"),
        (lambda: dpsgd_epsilon(1.0, 0.1, 0, 1e-5), "steps"),
        (lambda: dpsgd_epsilon(1.0, 0.1, 10, 1e-5, accountant="gdp"), "accountant"),
        (lambda: dpsgd_noise_multiplier(-1.0, 1e-5, 0.1, 10), "epsilon"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
