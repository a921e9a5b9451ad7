"""Speed of the graphical-model engine (tabsynth.models.pgm) on a discretised-Adult domain.

The domain is shared/datasets/adult_disc.csv with every attribute cut to at most 40 values (sizes
2 to 40, 14 attributes). Measurements: the 14 one-way marginals plus 16 random 2- and 3-way ones,
kept only while the junction tree stays under a size cap (as AIM does), all with Gaussian noise.
Timed: 1,000 mirror-descent iterations, sampling 10^6 rows, junction_tree_size, and the exact
marginals of all 91 attribute pairs (most across cliques). Wall and CPU seconds: on a shared machine
the CPU figure is the steadier one. Run: `python benchmarks/pgm_speed.py` (one core is enough).
"""

from __future__ import annotations

import json
import time
from itertools import combinations

import numpy as np
import pandas as pd
from _common import ROOT, Timer, write_results

from tabsynth.models.pgm import Domain, LinearMeasurement, estimate, junction_tree_size

DATA = ROOT.parent / "shared" / "datasets"
MAX_VALUES = 40
SIGMA = 10.0


def adult_codes() -> tuple[Domain, np.ndarray]:
    sizes = json.loads((DATA / "adult_disc_domain.json").read_text())
    codes = pd.read_csv(DATA / "adult_disc.csv")[list(sizes)].to_numpy(np.int64)
    factors = np.array([-(-size // MAX_VALUES) for size in sizes.values()])
    coarse = [-(-size // factor) for size, factor in zip(sizes.values(), factors, strict=True)]
    return Domain(tuple(sizes), tuple(coarse)), codes // factors


def choose_cliques(domain: Domain, count: int, cap: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    pairs_and_triples = list(combinations(domain.names, 2)) + list(combinations(domain.names, 3))
    chosen = [(name,) for name in domain.names]
    for index in rng.permutation(len(pairs_and_triples)):
        candidate = pairs_and_triples[index]
        if junction_tree_size(domain, chosen + [candidate]) <= cap:
            chosen.append(candidate)
        if len(chosen) == len(domain) + count:
            break
    return chosen


def exact_counts(domain: Domain, codes: np.ndarray, clique) -> np.ndarray:
    columns = [codes[:, domain.index(name)] for name in clique]
    return np.bincount(np.ravel_multi_index(columns, domain.shape(clique)), minlength=domain.size(clique))


def timed(work):
    """(result, wall seconds, CPU seconds): on a shared machine the CPU time is the steadier figure."""
    cpu = time.process_time()
    with Timer() as wall:
        result = work()
    return result, wall.seconds, time.process_time() - cpu


def run(cap: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    domain, codes = adult_codes()
    cliques = choose_cliques(domain, 16, cap, rng)
    exact = [exact_counts(domain, codes, clique) for clique in cliques]
    measurements = [LinearMeasurement(clique, counts + rng.normal(0, SIGMA, counts.size), SIGMA)
                    for clique, counts in zip(cliques, exact, strict=True)]
    _, sizing, _ = timed(lambda: [junction_tree_size(domain, cliques) for _ in range(100)])
    model, fit_wall, fit_cpu = timed(lambda: estimate(domain, measurements, iterations=1000))
    rows, sample_wall, sample_cpu = timed(lambda: model.sample(1_000_000, rng))
    pairs = list(combinations(domain.names, 2))
    _, query_wall, query_cpu = timed(lambda: [model.marginal(pair) for pair in pairs])
    error = np.mean([np.abs(model.marginal(clique).ravel() - counts).sum() / len(codes)
                     for clique, counts in zip(cliques, exact, strict=True)])
    return {"size cap": cap, "model cells": sum(domain.size(c) for c in model.cliques),
            "largest clique": max(domain.size(c) for c in model.cliques), "measured cliques": len(cliques),
            "fit 1000 iterations wall s": fit_wall, "fit CPU s": fit_cpu,
            "sample 1e6 rows wall s": sample_wall, "sample CPU s": sample_cpu,
            "91 pair marginals wall s": query_wall, "marginals CPU s": query_cpu,
            "junction_tree_size ms": sizing * 10, "mean L1 error / n": error, "rows": len(rows)}


def main() -> None:
    rows = [run(cap) for cap in (100_000, 1_000_000)]
    print(write_results("pgm_speed", rows, "Graphical-model engine speed (discretised Adult, 14 attributes)",
                        ("numpy", "scipy")))


if __name__ == "__main__":
    main()
