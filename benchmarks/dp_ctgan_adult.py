"""`dp-ctgan` on UCI Adult at ε = 3, δ = 1e-9: fit time, peak memory, fidelity and TSTR utility.

Same 80/20 split as the other benchmarks. Fidelity: mean one-way and two-way total variation distance to the
training table (tabsynth.metrics.fidelity; lower is better). Utility: ROC AUC on the real holdout of a
gradient-boosted model trained on synthetic rows (TSTR) beside one trained on the real rows (TRTR).
The epoch cap is kept small so that the run stays within minutes on two shared CPU cores.
Run: `python benchmarks/dp_ctgan_adult.py`.
"""

from __future__ import annotations

import time

from _common import Timer, adult_split, peak_rss_mb, write_results

from tabsynth.metrics.fidelity import column_distances
from tabsynth.metrics.utility import ml_utility
from tabsynth.models.dp_ctgan import DPCTGAN
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource

EPSILON, DELTA = 3.0, 1e-9
PARAMS = {"epochs": 20}  # the defaults, spelled out for the title


def main(seed: int = 0) -> None:
    train, holdout, schema = adult_split()
    model = DPCTGAN(**PARAMS)
    cpu = time.process_time()
    with Timer() as fit:
        model.fit(train, schema, budget=Budget(EPSILON, DELTA, RandomSource.seeded(seed)), rng=seed)
    fit_cpu = time.process_time() - cpu
    with Timer() as sample:
        synthetic = model.sample(len(train), rng=seed + 1)
    fidelity = {m.name: m.value for m in column_distances(train, synthetic, schema)}
    utility = {m.name: m.value for m in ml_utility(train, holdout, synthetic, schema, "income")}
    sgd = model.privacy_["measurements"][-1]
    row = {"model": "dp-ctgan", "epsilon": EPSILON, "delta": DELTA, "reported epsilon": model.privacy_["epsilon"],
           "noise multiplier": sgd["noise_multiplier"], "DP-SGD steps": sgd["steps"], "fit s": fit.seconds,
           "fit CPU s": fit_cpu, "sample s": sample.seconds, "peak RSS MB": peak_rss_mb(),
           "mean 1-way TVD": fidelity["mean_column_tvd"], "mean 2-way TVD": fidelity["mean_pair_tvd"],
           "TSTR AUC": utility["tstr_auc"], "TRTR AUC": utility["trtr_auc"]}
    title = (f"dp-ctgan on UCI Adult (80/20 split, ε = {EPSILON:g}, δ = {DELTA:g}, "
             f"{PARAMS['epochs']} epochs, seed {seed})")
    print(write_results("dp_ctgan_adult", [row], title, ("tabsynth", "torch", "opacus")))
    assert row["reported epsilon"] <= EPSILON, "the model must stay within its budget"


if __name__ == "__main__":
    main()
