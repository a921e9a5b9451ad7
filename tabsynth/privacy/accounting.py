"""Privacy accounting as pure functions: zCDP costs of the mechanisms, zCDP → (ε, δ), and DP-SGD via opacus.

References:
- Bun & Steinke 2016, "Concentrated Differential Privacy": Gaussian mechanism is Δ²/(2σ²)-zCDP.
- Canonne, Kamath & Steinke 2020, "The Discrete Gaussian for Differential Privacy" (CKS): the same ρ for the
  discrete Gaussian, and the tight ρ-zCDP → (ε, δ)-DP conversion (Corollary 13, `cdp2adp.py`).
- Cesar & Rogers 2021, "Bounding, Concentrating, and Truncating": the ε-DP exponential mechanism is ε-bounded-range,
  hence ε²/8-zCDP.
"""

from __future__ import annotations

import math
import numbers

_ALPHA_MIN = 1.01  # as in CKS's cdp2adp.py: avoids numerical trouble near α = 1; any α > 1 gives a valid bound
_BISECTION_STEPS = 200


def gaussian_rho(sigma: float, sensitivity: float = 1.0) -> float:
    """ρ of the (discrete) Gaussian mechanism with noise scale `sigma` on a query of L2 sensitivity `sensitivity`."""
    check_positive("sigma", sigma)
    check_positive("sensitivity", sensitivity)
    return sensitivity**2 / (2.0 * sigma**2)


def gaussian_sigma(rho: float, sensitivity: float = 1.0) -> float:
    """Noise scale that makes the (discrete) Gaussian mechanism exactly ρ-zCDP."""
    check_positive("rho", rho)
    check_positive("sensitivity", sensitivity)
    return sensitivity / math.sqrt(2.0 * rho)


def exponential_rho(epsilon: float) -> float:
    """ρ of the ε-DP exponential mechanism (ε-bounded-range ⇒ ε²/8-zCDP)."""
    check_positive("epsilon", epsilon)
    return epsilon**2 / 8.0


def exponential_epsilon(rho: float) -> float:
    """The ε to give the exponential mechanism so that it costs ρ."""
    check_positive("rho", rho)
    return math.sqrt(8.0 * rho)


def zcdp_epsilon(rho: float, delta: float) -> float:
    """Smallest ε (up to bisection precision, rounded up) such that ρ-zCDP implies (ε, δ)-DP (CKS Corollary 13)."""
    _check_non_negative("rho", rho)
    check_delta(delta)
    if rho == 0:
        return 0.0
    if math.isinf(rho):
        return math.inf
    log_delta = math.log(delta)
    upper = rho + 2.0 * math.sqrt(rho * -log_delta)  # Bun–Steinke bound: always enough
    return _bisect(lambda eps: _zcdp_log_delta(rho, eps) <= log_delta, good=upper, bad=0.0)


def zcdp_rho(epsilon: float, delta: float) -> float:
    """Largest ρ (up to bisection precision, rounded down) such that ρ-zCDP implies (ε, δ)-DP."""
    check_positive("epsilon", epsilon)
    check_delta(delta)
    log_delta = math.log(delta)
    too_much = epsilon + 1.0
    while _zcdp_log_delta(too_much, epsilon) <= log_delta:
        too_much *= 2.0
    return _bisect(lambda rho: _zcdp_log_delta(rho, epsilon) <= log_delta, good=0.0, bad=too_much)


def dpsgd_epsilon(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp"
) -> float:
    """ε of DP-SGD (Poisson sampling at `sample_rate`, `steps` noisy steps) at `delta`, by an opacus accountant."""
    check_positive("noise_multiplier", noise_multiplier)
    _check_dpsgd(sample_rate, steps, delta, accountant)
    from opacus.accountants import create_accountant

    tracker = create_accountant(mechanism=accountant)
    tracker.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(tracker.get_epsilon(delta=delta))


def dpsgd_noise_multiplier(
    epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "rdp"
) -> float:
    """Smallest noise multiplier (to opacus's 0.01 ε tolerance) for which DP-SGD stays within (ε, δ)."""
    check_positive("epsilon", epsilon)
    _check_dpsgd(sample_rate, steps, delta, accountant)
    from opacus.accountants.utils import get_noise_multiplier

    return float(
        get_noise_multiplier(
            target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps, accountant=accountant
        )
    )


def _zcdp_log_delta(rho: float, epsilon: float) -> float:
    """log δ such that ρ-zCDP implies (ε, δ)-DP, optimised over the Rényi order α (CKS Corollary 13)."""
    alpha = _optimal_alpha(rho, epsilon)
    log_delta = (alpha - 1.0) * (alpha * rho - epsilon) + alpha * math.log1p(-1.0 / alpha) - math.log(alpha - 1.0)
    return min(log_delta, 0.0)


def _optimal_alpha(rho: float, epsilon: float) -> float:
    """Root of the derivative (2α − 1)ρ − ε + log(1 − 1/α) of the convex exponent above, by bisection."""
    alpha_max = (epsilon + 1.0) / (2.0 * rho) + 2.0
    return _bisect(lambda a: (2.0 * a - 1.0) * rho - epsilon + math.log1p(-1.0 / a) >= 0, good=alpha_max,
                   bad=_ALPHA_MIN)


def _bisect(is_good, good: float, bad: float) -> float:
    """Shrink [bad, good] around the boundary of a monotone predicate; returns a point where it holds."""
    for _ in range(_BISECTION_STEPS):
        middle = (good + bad) / 2.0
        if middle in (good, bad):
            break
        if is_good(middle):
            good = middle
        else:
            bad = middle
    return good


def _check_dpsgd(sample_rate: float, steps: int, delta: float, accountant: str) -> None:
    if not (_is_real(sample_rate) and 0 < sample_rate <= 1):
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    check_delta(delta)
    if accountant not in ("rdp", "prv"):
        raise ValueError(f"accountant must be 'rdp' or 'prv', got {accountant!r}")


def check_positive(name: str, value: float) -> None:
    """Raise ValueError unless `value` is a positive finite number."""
    if not (_is_real(value) and 0 < value < math.inf):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not (_is_real(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")


def check_delta(delta: float) -> None:
    """Raise ValueError unless 0 < delta < 1."""
    if not (_is_real(delta) and 0 < delta < 1):
        raise ValueError(f"delta must be between 0 and 1 (exclusive), got {delta!r}")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)
