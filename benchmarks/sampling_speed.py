"""Sampling speed of `copula` and `dp-marginal` (ε = 1, δ = 1e-9) fitted once on UCI Adult: in process, and end to
end as a user runs it (`tabsynth sample MODEL --rows 5000000 --out s.parquet`).

In process: each model samples 10^6 and 5·10^6 rows (`model.sample`, a DataFrame), best of `--repeats` seeded runs.
End to end: `tabsynth sample` in a child process writes `--cli-rows` rows to Parquet, best of `--cli-repeats`;
its wall time, CPU time and peak RSS (GNU time's, /usr/bin/time) are recorded. Wall and CPU seconds both: on a
shared machine the CPU figure is the steadier one (CPU time counts every thread, so it is no lower bound on wall time
where sampling or Arrow ran threads). The 1-minute load average is recorded beside each row; with more runnable
processes than cores, wall time says more about the neighbours than about the code.
Goals (issue 21): at least 2·10^6 rows per second in process; `tabsynth sample` writes 5·10^6 rows to Parquet in
at most 5 s under 1 GB.

Rows of other `--label`s already in results/sampling_speed.csv are kept, so a run of an older checkout
(its `tabsynth` first on the path, `--label before --models DIR`) and of this one (`--models DIR`: the same
saved models) end up in one table.
Run: `python benchmarks/sampling_speed.py [--label after] [--rows 1000000 5000000] [--repeats 3] [--models DIR]
[--cli-rows 5000000] [--cli-repeats 2]`.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import RESULTS, Timer, adult_split, peak_rss_mb, write_results

from tabsynth.models.base import create_model, load_model, save_model
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource

NAME = "sampling_speed"
EPSILON, DELTA = 1.0, 1e-9
GOAL_ROWS_PER_SECOND = 2_000_000
GOAL_CLI_SECONDS, GOAL_CLI_MB = 5.0, 1024
PACKAGES = ("tabsynth", "numpy", "pandas", "scipy", "copulas", "pyarrow")
MODELS = ("copula", "dp-marginal")
TABSYNTH = Path(sys.executable).with_name("tabsynth")


def fitted_models(folder: Path) -> dict:
    """Both models fitted on the Adult training split, or loaded from `folder` where an earlier run saved
    them there: then two checkouts time the very same models (and the older one's saved state must load)."""
    if all((folder / name).exists() for name in MODELS):
        return {name: load_model(folder / name)[0] for name in MODELS}
    train, _, schema = adult_split()
    models = {"copula": create_model("copula").fit(train, schema, rng=0),
              "dp-marginal": create_model("dp-marginal").fit(
                  train, schema, budget=Budget(EPSILON, DELTA, RandomSource.seeded(0)))}
    for name, model in models.items():
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
    return {"code": label, "what": "model.sample in process", "model": name, "rows": rows, "columns": runs[0][2],
            "best wall s": round(wall, 3), "best CPU s": round(cpu, 3), "rows/s (wall)": round(rows / wall),
            "rows/s (CPU)": round(rows / cpu), "meets goal (wall)": rows / wall >= GOAL_ROWS_PER_SECOND,
            "runs": repeats, "load avg (1 min)": round(load, 2), "peak RSS MB so far": round(peak_rss_mb()),
            "when": datetime.now().isoformat(timespec="minutes")}


def timed_command(folder: Path, out: Path, rows: int, seed: int) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one `tabsynth sample` child process writing `rows` rows to `out`.

    GNU time reports them: the rusage of a child forked from this (large) process would count the parent's pages
    resident before the exec as the child's peak."""
    figures = out.with_name("time.txt")
    command = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(figures), str(TABSYNTH), "sample", str(folder),
               "--rows", str(rows), "--out", str(out), "--seed", str(seed), "--overwrite"]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr}")
    wall, user, system, peak_kb = map(float, figures.read_text().split()[-4:])
    return wall, user + system, peak_kb / 1024


def measure_command(label: str, name: str, folder: Path, rows: int, repeats: int) -> dict:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tabsynth-sample-") as work:
        out = Path(work) / "s.parquet"
        runs = [timed_command(folder, out, rows, seed) for seed in range(repeats)]
        size_mb = out.stat().st_size / 2**20
    wall, cpu, peak = min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)
    return {"code": label, "what": "tabsynth sample -> Parquet (child process)", "model": name, "rows": rows,
            "best wall s": round(wall, 3), "best CPU s": round(cpu, 3), "rows/s (wall)": round(rows / wall),
            "rows/s (CPU)": round(rows / cpu), "meets goal (wall)": wall <= GOAL_CLI_SECONDS and peak < GOAL_CLI_MB,
            "runs": repeats, "load avg (1 min)": round(load, 2), "child peak RSS MB": round(peak),
            "file MB": round(size_mb, 1), "when": datetime.now().isoformat(timespec="minutes")}


def earlier_rows(label: str) -> list[dict]:
    """Rows of other labels from an earlier run, so before and after share one table."""
    path = RESULTS / f"{NAME}.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["code"] != label]


def report(row: dict) -> None:
    print(f"{row['code']:>8} {row['what'][:24]:>24} {row['model']:>12} {row['rows']:>9,} rows: "
          f"{row['best wall s']:>7} s wall, {row['best CPU s']:>7} s CPU, {row['rows/s (wall)']:>11,} rows/s wall "
          f"(load {row['load avg (1 min)']}" + (f", peak {row['child peak RSS MB']} MB)" if "child peak RSS MB" in row
                                                else ")"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="names this checkout in the table (default: after)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cli-rows", type=int, default=5_000_000)
    parser.add_argument("--cli-repeats", type=int, default=2)
    parser.add_argument("--models", type=Path, help="folder to save the fitted models to, or load them from")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tabsynth-models-") as scratch:
        folder = args.models or Path(scratch)
        for name, model in fitted_models(folder).items():
            model.sample(1000, rng=0)  # warm: first-call imports and allocations are not sampling speed
            for count in args.rows:
                rows.append(measure(args.label, name, model, count, args.repeats))
                report(rows[-1])
            if args.cli_repeats:
                rows.append(measure_command(args.label, name, folder / name, args.cli_rows, args.cli_repeats))
                report(rows[-1])
    table = earlier_rows(args.label) + rows
    print(write_results(NAME, table, "Sampling speed on UCI Adult (15 columns; best of seeded runs)", PACKAGES))


if __name__ == "__main__":
    main()
