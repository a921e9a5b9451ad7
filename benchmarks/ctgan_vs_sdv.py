"""tabsynth `ctgan` (and `tvae`) against SDV's CTGANSynthesizer with its defaults (300 epochs), on UCI Adult.

Same 80/20 split, same number of synthetic rows, same metrics (tabsynth.metrics.fidelity):
mean one-way and two-way total variation distance to the training table (lower is better).
Both run on one torch thread: the benchmark machine is shared, and a two-thread torch pool on
busy cores spins (ten times slower per epoch here). Fit time is given as wall and CPU seconds;
CPU seconds are the steadier figure when other work shares the machine.
Run: `pip install -e '.[bench]'`, then `python benchmarks/ctgan_vs_sdv.py` (about an hour).
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from functools import partial

import numpy as np
import torch
from _common import Timer, adult_split, write_results

from tabsynth.metrics.fidelity import column_distances
from tabsynth.models.base import create_model

THREADS = 1
SEED = 0
OURS = {"ctgan": {"epochs": 60, "patience": 20, "threads": THREADS}, "tvae": {"patience": 20, "threads": THREADS}}


@contextmanager
def cpu_clock():
    """CPU seconds of this process spent inside the block, as `.seconds`."""
    clock = Timer()
    start = time.process_time()
    yield clock
    clock.seconds = time.process_time() - start


def fidelity(train, synthetic, schema) -> dict:
    results = {m.name: m.value for m in column_distances(train, synthetic, schema)}
    return {"mean 1-way TVD": results["mean_column_tvd"], "mean 2-way TVD": results["mean_pair_tvd"]}


def run_tabsynth(name, train, schema) -> dict:
    model = create_model(name, **OURS[name])
    with Timer() as fit, cpu_clock() as cpu:
        model.fit(train, schema, rng=SEED)
    with Timer() as sample:
        synthetic = model.sample(len(train), rng=SEED + 1)
    return {"system": f"tabsynth {name}", "epochs": len(model.history_), "fit s": fit.seconds, "fit CPU s": cpu.seconds,
            "sample s": sample.seconds, **fidelity(train, synthetic, schema)}


def run_sdv(train, schema) -> dict:
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer

    metadata = Metadata.detect_from_dataframes({"adult": train})
    model = CTGANSynthesizer(metadata)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    with Timer() as fit, cpu_clock() as cpu:
        model.fit({"adult": train})
    with Timer() as sample:
        synthetic = model.sample(len(train))
    if isinstance(synthetic, dict):  # SDV 2.0 returns {table name: frame}
        synthetic = synthetic["adult"]
    return {"system": "SDV CTGANSynthesizer (defaults)", "epochs": model.get_parameters()["epochs"],
            "fit s": fit.seconds, "fit CPU s": cpu.seconds, "sample s": sample.seconds,
            **fidelity(train, synthetic[train.columns], schema)}


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(THREADS)
    train, _, schema = adult_split()
    rows = []
    for run in (partial(run_tabsynth, "ctgan"), partial(run_tabsynth, "tvae"), run_sdv):
        rows.append(run(train, schema))
        print(rows[-1], flush=True)
    print(write_results("ctgan_vs_sdv", rows, f"CTGAN on UCI Adult (80/20 split, seed {SEED}, {THREADS} torch thread)",
                        ("tabsynth", "ctgan", "sdv", "torch")))
    ours, _, theirs = rows
    assert ours["mean 1-way TVD"] <= theirs["mean 1-way TVD"], "ctgan must be at least as faithful column-wise"
    assert ours["mean 2-way TVD"] <= theirs["mean 2-way TVD"], "ctgan must be at least as faithful pairwise"


if __name__ == "__main__":
    main()
