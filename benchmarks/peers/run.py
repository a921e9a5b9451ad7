"""tabsynth against SDV, SmartNoise, DataSynthesizer and MOSTLY AI: one command, one table.

    python benchmarks/peers/run.py [--quick] [--only TEXT] [--rows N] [--epochs N] [--threads N]
                                   [--no-workload | --workload-only]

Installs each peer in its own environment (benchmarks/peers/.envs/), writes the fixed Adult split once,
fits every system in a subprocess with a time limit, scores every synthetic table with tabsynth.metrics,
and writes benchmarks/results/peers.{csv,md} (quick mode: peers_quick.*; --workload-only: *_workload.*).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import envs
import jobs
import metrics
import pandas as pd
import report
import systems
import workload

from tabsynth.table.schema import Schema

BENCHMARKS = Path(__file__).resolve().parents[1]
TIMEOUT_S = {"quick": 420, "full": 4 * 3600}


@dataclass(frozen=True)
class Split:
    """The fixed Adult split, written once to files that every system reads."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    schema: Schema
    train_file: str
    schema_file: str


def adult_split(folder: Path, rows: int | None) -> Split:
    """`adult_split(seed=0)` from benchmarks/_common.py, optionally cut to `rows` training rows (smoke tests)."""
    sys.path.insert(0, str(BENCHMARKS))
    from _common import adult_split as common_split

    train, holdout, schema = common_split(seed=0)
    if rows:
        train = train.sample(rows, random_state=0).reset_index(drop=True)
        holdout = holdout.sample(max(rows // 4, 100), random_state=0).reset_index(drop=True)
    train_file, schema_file = folder / "train.parquet", folder / "schema.json"
    train.to_parquet(train_file, index=False)
    holdout.to_parquet(folder / "holdout.parquet", index=False)
    schema_file.write_text(json.dumps(schema.to_dict()))
    return Split(train, holdout, schema, str(train_file), str(schema_file))


def describe(system: systems.System, params: dict) -> str:
    shown = {key: value for key, value in params.items() if key not in ("model", "synthesizer", "verbose")}
    return ", ".join(f"{key}={value}" for key, value in shown.items()) or "defaults"


def training_rows(split: Split, rows: int | None, folder: Path) -> str:
    """The training file, or a random subsample of `rows` of it (quick mode's slowest fits); the system still
    samples as many rows as the full training table has, and is scored against the full table."""
    if not rows or rows >= len(split.train):
        return split.train_file
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train_subsample.parquet"
    split.train.sample(rows, random_state=0).to_parquet(path, index=False)
    return str(path)


def evaluate(system: systems.System, split: Split, env: envs.EnvStatus, args, folder: Path) -> dict:
    """One row of the table: the system's costs and, if it finished, its metrics."""
    params = system.settings(args.quick, args.epochs)
    row = {"system": system.label, "status": "", "ε": system.epsilon, "settings": describe(system, params)}
    if env.python is None:
        return row | {"status": f"not installed: {env.reason}"}
    train_file = training_rows(split, params.pop(systems.TRAIN_ROWS, None), folder)
    job = jobs.Job(system.label, system.adapter, params, train_file, len(split.train), folder,
                   threads=args.threads, epsilon=system.epsilon, schema=split.schema_file)
    outcome = jobs.run(job, env.python, args.timeout)
    if outcome.report is None:
        return row | {"status": outcome.status}
    costs = {"ε spent": outcome.report["epsilon_spent"], "fit s": outcome.report["fit_s"],
             "sample s": outcome.report["sample_s"], "peak MB": outcome.report["peak_mb"]}
    try:
        scores = metrics.score(split.train, split.holdout, pd.read_parquet(job.synthetic), split.schema)
    except Exception as exc:  # a malformed synthetic table is a result to report, not a reason to stop
        return row | costs | {"status": f"metrics failed: {jobs.last_error(f'{type(exc).__name__}: {exc}')}"}
    return row | {"status": "ok"} | costs | scores


def left_out(system: systems.System) -> dict:
    return {"system": system.label, "status": f"left out in quick mode ({system.left_out_because})",
            "ε": system.epsilon}


def table(args, scratch: Path, environments: dict[str, envs.EnvStatus]) -> list[dict]:
    split = adult_split(scratch, args.rows)
    rows = []
    for index, system in enumerate(systems.SYSTEMS):
        if system not in systems.selected(args.quick, args.only):
            rows += [] if args.only else [left_out(system)]
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {system.label}", flush=True)
        rows.append(evaluate(system, split, environments[system.env], args, scratch / f"system-{index}"))
        print(f"    {rows[-1]['status']}", flush=True)
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, slowest peers left out (< 15 min)")
    parser.add_argument("--only", help="run only the systems whose label contains this text")
    parser.add_argument("--rows", type=int, help="subsample the training table (smoke test; not for results)")
    parser.add_argument("--epochs", type=int, help="override every system's epochs (smoke test)")
    parser.add_argument("--timeout", type=float, help="seconds allowed per fit (quick 420, full 14400)")
    # One thread: on the shared 2-core machine, two torch threads made a 3-epoch tabsynth ctgan fit 40 times slower.
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per fit (default 1)")
    parser.add_argument("--no-workload", action="store_true", help="skip the DP workload figure")
    parser.add_argument("--workload-only", action="store_true", help="only the DP workload figure, to NAME_workload.*")
    parser.add_argument("--name", help="results file name (default peers, quick mode peers_quick)")
    args = parser.parse_args(argv)
    if args.no_workload and args.workload_only:
        parser.error("--no-workload and --workload-only exclude each other")
    args.timeout = args.timeout or TIMEOUT_S["quick" if args.quick else "full"]
    args.name = args.name or ("peers_quick" if args.quick else "peers")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    started, load = time.perf_counter(), os.getloadavg()[0]
    table_systems = [] if args.workload_only else systems.selected(args.quick, args.only)
    needed = {s.env for s in table_systems} | {envs.TABSYNTH_ENV}
    needed |= set() if args.no_workload else workload.environments(args.quick)
    environments = {name: envs.ensure(name) for name in sorted(needed)}
    environments |= {name: envs.EnvStatus(name, None, envs.NOT_USED) for name in envs.PEER_ENVS if name not in needed}
    with tempfile.TemporaryDirectory(prefix="tabsynth-peers-") as scratch:
        rows = [] if args.workload_only else table(args, Path(scratch), environments)
        workload_rows = [] if args.no_workload else workload.run(args, Path(scratch) / "workload", environments)
    header = {"mode": "quick" if args.quick else "full", "wall_s": time.perf_counter() - started, "load": load,
              "load_end": os.getloadavg()[0],
              "versions": report.versions_line({name: envs.versions(status) for name, status in environments.items()},
                                               {name: status.reason for name, status in environments.items()})}
    notes = [f"Every fit ran in its own process with {args.threads} CPU thread(s) for torch, BLAS and OpenMP, and "
             f"at most {args.timeout:.0f} s.",
             f"Quick mode leaves out: {', '.join(systems.left_out_in_quick())}." if args.quick else "",
             "Smoke-test settings (subsampled rows or overridden epochs): not comparable results."
             if args.rows or args.epochs else ""]
    print(report.write(args.name, rows, workload_rows, header, [note for note in notes if note]))


if __name__ == "__main__":
    main()
