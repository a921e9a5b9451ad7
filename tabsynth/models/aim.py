"""AIM's select–measure–estimate loop (McKenna, Mullins, Sheldon & Miklau 2022, arXiv:2201.12677).

Start from noisy one-way marginals; then, each round, pick the workload marginal the current model
gets most wrong (exponential mechanism, score: weight · (L1 error − expected noise), the bias term
favouring small marginals), measure it with the discrete Gaussian, and refit the graphical model from
the last one. When a measurement barely moves the model the noise is halved (budget annealing); the
last round spends whatever is left. Candidates that would make the model exceed its size cap (which
grows with the budget spent) are skipped. Only the counts passed to the mechanisms read the data: they are
asked of a `Counts` object all at once, so an engine like DuckDB answers them in one scan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from tabsynth.models.pgm import Domain, GraphicalModel, LinearMeasurement, estimate, junction_tree_size
from tabsynth.privacy.accounting import exponential_rho, gaussian_rho
from tabsynth.privacy.mechanisms import RandomSource, exponential_mechanism, measure_counts
from tabsynth.privacy.preprocess import Charge, OneWay
from tabsynth.table.codecs import Codec
from tabsynth.table.counts import Counts

Clique = tuple[str, ...]
SELECTION_SHARE = 0.1  # of each round's budget, as in AIM
# Of the whole budget, for the one-way marginals that start the model. At low ε their noise dominates the error on
# columns of ~100 cells (one round's share, as before, left adult_disc's workload error at 0.283 at ε 0.3; 0.2: 0.255).
ONE_WAY_SHARE = 0.2
BYTES_PER_CELL = 8
TARGET_WEIGHT = 2.0  # of a workload marginal holding the target column


@dataclass(frozen=True)
class AimSettings:
    rounds: int  # planned selection rounds: each gets 1/(rounds + 1) of the budget until annealing
    max_model_mb: float
    iterations: int  # mirror-descent steps per round (warm started)
    final_iterations: int


def workload(names: list[str], degree: int, target: str | None = None,
             target_weight: float = TARGET_WEIGHT) -> dict[Clique, float]:
    """Marginals to preserve: all of `degree` columns, weight 1; or with a target, every pair plus the
    `degree`-way marginals that contain the target, those holding the target weighted `target_weight`."""
    if target is None:
        return {clique: 1.0 for clique in combinations(names, min(degree, len(names)))}
    cliques = [*combinations(names, min(degree, 2, len(names))),
               *(clique for clique in combinations(names, degree) if degree > 2 and target in clique)]
    return {clique: target_weight if target in clique else 1.0 for clique in cliques}


def candidates(weights: dict[Clique, float]) -> dict[Clique, float]:
    """Every subset of a workload marginal, weighted by its overlap with the workload (AIM's weighting)."""
    subsets = {sub for clique in weights for size in range(1, len(clique) + 1) for sub in combinations(clique, size)}
    return {sub: sum(w * len(set(sub) & set(clique)) for clique, w in weights.items()) for sub in sorted(subsets)}


def one_way_sigma(rho: float, columns: int) -> float:
    """Noise of each one-way measurement: together they cost ONE_WAY_SHARE of `rho`."""
    return math.sqrt(columns / (2 * ONE_WAY_SHARE * rho))


def run_aim(counts: Counts, codecs: Sequence[Codec], weights: dict[Clique, float], rho: float, noise: RandomSource,
            settings: AimSettings, one_way: dict[str, OneWay]) -> tuple[GraphicalModel, list[Charge]]:
    """The fitted model and the charges of the mechanisms run here; spends at most `rho` including the
    one-way marginals in `one_way`, measured beforehand at `one_way_sigma` (those not given are measured here).
    The model's domain is the codecs' codes; `counts` answers the marginal queries."""
    domain = Domain(tuple(c.name for c in codecs), tuple(c.size for c in codecs))
    pool = candidates(weights)
    answers = counts.code_counts(codecs, list(pool))
    sigma = one_way_sigma(rho, len(domain))
    measurements = [LinearMeasurement((name,), one_way[name].noisy, one_way[name].sigma) for name in one_way]
    charges = []
    for name in domain.names:
        if name not in one_way:
            _measure(answers[(name,)], (name,), sigma, noise, measurements, charges)
    used = len(domain) * gaussian_rho(sigma)
    sigma, epsilon = _round_noise(rho / (settings.rounds + 1))
    model = estimate(domain, measurements, iterations=settings.iterations)
    finished = False
    while not finished:
        if rho - used < 2 * (gaussian_rho(sigma) + exponential_rho(epsilon)):
            sigma, epsilon = _round_noise(rho - used)
            finished = True
        used += gaussian_rho(sigma) + exponential_rho(epsilon)
        limit = settings.max_model_mb * min(used / rho, 1.0)
        allowed = _small_enough(pool, model, limit)
        clique = _worst_approximated(allowed, answers, model, epsilon, sigma, noise, charges)
        before = model.marginal(clique).ravel()
        _measure(answers[clique], clique, sigma, noise, measurements, charges)
        model = estimate(domain, measurements, iterations=settings.iterations, warm_start=model)
        if np.abs(model.marginal(clique).ravel() - before).sum() <= math.sqrt(2 / math.pi) * sigma * before.size:
            sigma, epsilon = sigma / 2, epsilon * 2
    model = estimate(domain, measurements, iterations=settings.final_iterations, warm_start=model)
    return model, charges


def _round_noise(rho: float) -> tuple[float, float]:
    """σ of the measurement and ε of the selection for one round costing `rho`."""
    return math.sqrt(1 / (2 * (1 - SELECTION_SHARE) * rho)), math.sqrt(8 * SELECTION_SHARE * rho)


def _measure(counts: np.ndarray, clique: Clique, sigma: float, noise: RandomSource,
             measurements: list[LinearMeasurement], charges: list[Charge]) -> None:
    measurement = measure_counts(counts, sigma, ("marginal", *clique), noise)
    measurements.append(LinearMeasurement(clique, measurement.noisy.astype(float), sigma))
    charges.append(Charge(measurement.record() | {"mechanism": "discrete Gaussian"}, measurement.rho))


def _small_enough(pool: dict[Clique, float], model: GraphicalModel, limit_mb: float) -> dict[Clique, float]:
    """Candidates already inside a model clique, or that keep the model within `limit_mb`."""
    inside = {sub for clique in model.cliques for size in range(1, len(clique) + 1)
              for sub in combinations(clique, size)}
    limit_cells = limit_mb * 2**20 / BYTES_PER_CELL
    return {clique: weight for clique, weight in pool.items() if clique in inside or (
        model.domain.size(clique) <= limit_cells
        and junction_tree_size(model.domain, model.cliques + [clique]) <= limit_cells)}


def _worst_approximated(pool: dict[Clique, float], answers: dict[Clique, np.ndarray], model: GraphicalModel,
                        epsilon: float, sigma: float, noise: RandomSource, charges: list[Charge]) -> Clique:
    cliques = list(pool)
    bias = math.sqrt(2 / math.pi) * sigma
    scores = np.array([pool[c] * (np.abs(answers[c] - model.marginal(c).ravel()).sum() - bias * answers[c].size)
                       for c in cliques])
    sensitivity = max(pool.values())
    chosen = cliques[exponential_mechanism(scores, epsilon, sensitivity, noise)]
    record = {"what": ["select", *chosen], "mechanism": "exponential", "epsilon": epsilon,
              "sensitivity": sensitivity, "candidates": len(cliques), "rho": exponential_rho(epsilon)}
    charges.append(Charge(record, exponential_rho(epsilon)))
    return chosen
