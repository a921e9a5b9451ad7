"""Fit one system and write its synthetic table: `python worker.py JOB.json`, run with that system's own python.

A job that names `tables` is a linked dataset (benchmarks/linked_peers.py): it writes one Parquet file per table.

Needs only the standard library and pandas, so it runs in every environment. It reads the training table
(Parquet), fits, samples as many rows as it was asked for, writes them to Parquet and reports fit and sample
seconds and peak resident memory (this process plus its children) as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from importlib import metadata
from pathlib import Path

import pandas as pd


def peak_memory_mb() -> float:
    """Peak resident memory of this process plus that of its largest finished child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def run(job: dict) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import adapters

    train = pd.read_parquet(job["train"])
    fit = getattr(adapters, job["adapter"])
    context = adapters.Context(job["workdir"], job["seed"], job["threads"], job.get("schema"), job.get("epsilon"))
    start = time.perf_counter()
    fitted_model = fit(train, job["params"], context)
    fitted = time.perf_counter()
    synthetic = fitted_model.sample(job["rows"])
    sampled = time.perf_counter()
    synthetic.to_parquet(job["out"], index=False)
    return {"fit_s": fitted - start, "sample_s": sampled - fitted, "peak_mb": peak_memory_mb(),
            "rows": len(synthetic), "epsilon_spent": fitted_model.epsilon_spent}


def run_linked(job: dict) -> dict:
    """A linked dataset: every table read, fitted together, `persons` persons sampled, each table written to
    `out/<table>.parquet`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import linked_adapters

    frames = {name: pd.read_parquet(path) for name, path in job["tables"].items()}
    fit = getattr(linked_adapters, job["adapter"])
    context = linked_adapters.Context(job["workdir"], job["seed"], job["threads"], job["spec"])
    start = time.perf_counter()
    fitted_model = fit(frames, job["params"], context)
    fitted = time.perf_counter()
    synthetic = fitted_model.sample(job["persons"])
    sampled = time.perf_counter()
    os.makedirs(job["out"], exist_ok=True)
    for name, frame in synthetic.items():
        frame.to_parquet(Path(job["out"]) / f"{name}.parquet", index=False)
    return {"fit_s": fitted - start, "sample_s": sampled - fitted, "peak_mb": peak_memory_mb(),
            "rows": {name: len(frame) for name, frame in synthetic.items()}}


def versions(packages: list[str]) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    os.makedirs(job["workdir"], exist_ok=True)
    report = run_linked(job) if "tables" in job else run(job)
    Path(job["report"]).write_text(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "--versions":  # `worker.py --versions PACKAGE...`: this environment's versions, as JSON
        print(json.dumps(versions(sys.argv[2:])))
    else:
        main(sys.argv[1])
