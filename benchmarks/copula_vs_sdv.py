"""tabsynth `copula` against SDV's GaussianCopulaSynthesizer with its defaults, on UCI Adult.

Same 80/20 split, same number of synthetic rows, same metrics (tabsynth.metrics.fidelity):
mean one-way and two-way total variation distance to the training table (lower is better).
Run: `make bench` (installs the `bench` extra, i.e. SDV), or `python benchmarks/copula_vs_sdv.py`.
"""

from __future__ import annotations

import warnings

import numpy as np
from _common import Timer, adult_split, write_results

from tabsynth.metrics.fidelity import column_distances
from tabsynth.models.base import create_model


def fidelity(train, synthetic, schema) -> dict:
    results = {m.name: m.value for m in column_distances(train, synthetic, schema)}
    return {"mean 1-way TVD": results["mean_column_tvd"], "mean 2-way TVD": results["mean_pair_tvd"]}


def run_tabsynth(train, schema, seed: int) -> dict:
    model = create_model("copula")
    with Timer() as fit:
        model.fit(train, schema, rng=seed)
    with Timer() as sample:
        synthetic = model.sample(len(train), rng=seed + 1)
    return {"system": "tabsynth copula", "fit s": fit.seconds, "sample s": sample.seconds,
            **fidelity(train, synthetic, schema)}


def run_sdv(train, schema, seed: int) -> dict:
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    metadata = Metadata.detect_from_dataframes({"adult": train})
    model = GaussianCopulaSynthesizer(metadata)
    np.random.seed(seed)
    with Timer() as fit:
        model.fit({"adult": train})
    with Timer() as sample:
        synthetic = model.sample(len(train))
    if isinstance(synthetic, dict):  # SDV 2.0 returns {table name: frame}
        synthetic = synthetic["adult"]
    return {"system": "SDV GaussianCopula (defaults)", "fit s": fit.seconds, "sample s": sample.seconds,
            **fidelity(train, synthetic[train.columns], schema)}


def main() -> None:
    warnings.filterwarnings("ignore")
    train, _, schema = adult_split()
    rows = []
    for seed in (0, 1, 2):
        rows += [run_tabsynth(train, schema, seed) | {"seed": seed}, run_sdv(train, schema, seed) | {"seed": seed}]
    by_system = {}
    for row in rows:
        by_system.setdefault(row["system"], []).append(row)
    summary = [{"system": name, **{k: float(np.mean([r[k] for r in runs])) for k in runs[0] if k not in
                                   ("system", "seed")}, "runs": len(runs)} for name, runs in by_system.items()]
    print(write_results("copula_vs_sdv", summary, "Gaussian copula on UCI Adult (80/20 split, mean of 3 seeds)",
                        ("tabsynth", "copulas", "sdv")))
    ours, theirs = summary
    assert ours["mean 1-way TVD"] <= theirs["mean 1-way TVD"], "copula must be at least as faithful column-wise"


if __name__ == "__main__":
    main()
