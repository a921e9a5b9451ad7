"""Sampling throughput of `copula` and `dp-marginal` (ε = 1, δ = 1e-9) fitted once on UCI Adult.

Each model samples 10^6 and 5·10^6 rows, best of `--repeats` seeded runs. Wall and CPU seconds both: on a
shared machine the CPU figure is the steadier one (CPU time counts every thread, so it is no lower bound on
wall time where numpy or BLAS ran threads). The 1-minute load average is recorded beside each row; with
more runnable processes than cores, wall time says more about the neighbours than about the code.
Goal (issue 7): at least 10^6 rows per second.

Rows of other `--label`s already in results/sampling_speed.csv are kept, so a run of an older checkout
(its `tabsynth` first on the path, `--label before --models DIR`) and of this one (`--models DIR`: the same
saved models) end up in one table.
Run: `python benchmarks/sampling_speed.py [--label after] [--rows 1000000 5000000] [--repeats 3] [--models DIR]`.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from datetime import datetime
from pathlib import Path

from _common import RESULTS, Timer, adult_split, peak_rss_mb, write_results

from tabsynth.models.base import create_model, load_model, save_model
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource

NAME = "sampling_speed"
EPSILON, DELTA = 1.0, 1e-9
GOAL_ROWS_PER_SECOND = 1_000_000
PACKAGES = ("tabsynth", "numpy", "pandas", "scipy", "copulas")
MODELS = ("copula", "dp-marginal")


def fitted_models(folder: Path | None) -> dict:
    """Both models fitted on the Adult training split, or loaded from `folder` where an earlier run saved
    them there: then two checkouts time the very same models (and the older one's saved state must load)."""
    if folder is not None and all((folder / name).exists() for name in MODELS):
        return {name: load_model(folder / name)[0] for name in MODELS}
    train, _, schema = adult_split()
    models = {"copula": create_model("copula").fit(train, schema, rng=0),
              "dp-marginal": create_model("dp-marginal").fit(
                  train, schema, budget=Budget(EPSILON, DELTA, RandomSource.seeded(0)))}
    for name, model in models.items():
        if folder is not None:
            save_model(model, schema, folder / name)
    return models


def timed_sample(model, rows: int, seed: int) -> tuple[float, float, int]:
    """(wall s, CPU s, columns) of one seeded sample of `rows` rows."""
    cpu = time.process_time()
    with Timer() as wall:
        frame = model.sample(rows, rng=seed)
    return wall.seconds, time.process_time() - cpu, frame.shape[1]


def measure(label: str, name: str, model, rows: int, repeats: int) -> dict:
    load = os.getloadavg()[0]
    runs = [timed_sample(model, rows, seed) for seed in range(repeats)]
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    return {"code": label, "model": name, "rows": rows, "columns": runs[0][2], "best wall s": round(wall, 3),
            "best CPU s": round(cpu, 3), "rows/s (wall)": round(rows / wall), "rows/s (CPU)": round(rows / cpu),
            "meets goal (wall)": rows / wall >= GOAL_ROWS_PER_SECOND, "runs": repeats,
            "load avg (1 min)": round(load, 2), "peak RSS MB so far": round(peak_rss_mb()),
            "when": datetime.now().isoformat(timespec="minutes")}


def earlier_rows(label: str) -> list[dict]:
    """Rows of other labels from an earlier run, so before and after share one table."""
    path = RESULTS / f"{NAME}.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["code"] != label]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="names this checkout in the table (default: after)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", type=Path, help="folder to save the fitted models to, or load them from")
    args = parser.parse_args()
    rows = []
    for name, model in fitted_models(args.models).items():
        model.sample(1000, rng=0)  # warm: first-call imports and allocations are not sampling speed
        for count in args.rows:
            rows.append(measure(args.label, name, model, count, args.repeats))
            print(f"{args.label:>8} {name:>12} {count:>9,} rows: {rows[-1]['rows/s (wall)']:>11,} rows/s wall, "
                  f"{rows[-1]['rows/s (CPU)']:>11,} rows/s CPU (load {rows[-1]['load avg (1 min)']})", flush=True)
    table = earlier_rows(args.label) + rows
    print(write_results(NAME, table, "Sampling throughput on UCI Adult (15 columns; best of seeded runs)", PACKAGES))


if __name__ == "__main__":
    main()
