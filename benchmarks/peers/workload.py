"""The DP workload figure: mean L1 error over all 3-way marginals of discretised Adult (domain public).

Data, schema and error function come from benchmarks/dp_workload_adult_disc.py (dp-marginal's own benchmark);
here the same error is measured for dp-marginal, SmartNoise MST and SmartNoise AIM at several ε, each fit in
its own environment through the same worker as the main table.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import envs
import jobs
import pandas as pd
from systems import System

BENCHMARKS = Path(__file__).resolve().parents[1]
EPSILONS = {"quick": (0.3, 1.0, 3.0, 10.0), "full": (0.3, 1.0, 3.0, 10.0)}
RUNS = {"quick": 1, "full": 3}
# Every system fits the whole 3-way workload; AIM is left out in quick mode (four ε take hours on 2 cores).
SYSTEMS = (
    System("tabsynth dp-marginal", envs.TABSYNTH_ENV, "tabsynth", {"model": "dp-marginal"}),
    System("SmartNoise MST", "smartnoise", "smartnoise", {"synthesizer": "mst", "mbi_sampling": "sample"}),
    System("SmartNoise AIM", "smartnoise", "smartnoise", {"synthesizer": "aim", "degree": 3, "mbi_sampling": "sample"},
           quick=None),
)


def environments(quick: bool) -> set[str]:
    return {s.env for s in SYSTEMS if not (quick and s.quick is None)}


def reference():
    """dp_workload_adult_disc.py, imported for its `load` and `workload_error` (one definition of the figure)."""
    sys.path.insert(0, str(BENCHMARKS))
    import dp_workload_adult_disc

    return dp_workload_adult_disc


def run(args, folder: Path, statuses: dict[str, envs.EnvStatus]) -> list[dict]:
    """One row per system and ε: mean (and spread) of the workload error over the runs, mean fit time."""
    bench = reference()
    table, schema, sizes = bench.load()
    folder.mkdir(parents=True, exist_ok=True)
    data_file, schema_file = folder / "adult_disc.parquet", folder / "schema.json"
    table.to_parquet(data_file, index=False)
    schema_file.write_text(json.dumps(schema.to_dict()))
    mode = "quick" if args.quick else "full"
    rows = []
    for system in SYSTEMS:
        for epsilon in EPSILONS[mode]:
            if args.quick and system.quick is None:
                rows.append({"system": system.label, "ε": epsilon, "status": "left out in quick mode (slow)"})
                continue
            print(f"[{time.strftime('%H:%M:%S')}] workload: {system.label} ε={epsilon:g}", flush=True)
            outcomes = []
            for seed in range(RUNS[mode]):
                job = jobs.Job(system.label, system.adapter, system.params, str(data_file), len(table),
                               folder / f"{system.adapter}-{epsilon:g}-{seed}", seed=seed, threads=args.threads,
                               epsilon=epsilon, schema=str(schema_file))
                outcomes.append(_one_run(job, statuses[system.env], args.timeout, table, sizes, bench))
            rows.append({"system": system.label, "ε": epsilon, **summarise(outcomes)})
            print(f"    {rows[-1]['status']}", flush=True)
    return rows


def _one_run(job: jobs.Job, env: envs.EnvStatus, timeout: float, table, sizes, bench) -> dict:
    if env.python is None:
        return {"status": f"not installed: {env.reason}"}
    outcome = jobs.run(job, env.python, timeout)
    if outcome.report is None:
        return {"status": outcome.status}
    synthetic = pd.read_parquet(job.synthetic)[list(sizes)].astype("int64")
    return {"status": "ok", "error": bench.workload_error(table, synthetic, sizes), "fit s": outcome.report["fit_s"],
            "peak MB": outcome.report["peak_mb"]}


def summarise(outcomes: list[dict]) -> dict:
    finished = [o for o in outcomes if o["status"] == "ok"]
    failed = [o["status"] for o in outcomes if o["status"] != "ok"]
    status = "ok" if not failed else f"{len(failed)} of {len(outcomes)} runs: {failed[0]}"
    if not finished:
        return {"status": status}
    errors = [o["error"] for o in finished]
    return {"status": status, "runs": len(finished), "mean L1 error": statistics.fmean(errors),
            "sd": statistics.stdev(errors) if len(errors) > 1 else None,
            "fit s": statistics.fmean(o["fit s"] for o in finished),
            "peak MB": max(o["peak MB"] for o in finished)}
