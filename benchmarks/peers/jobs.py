"""Run one fit in a subprocess with its environment's python and a wall-clock limit; say in one line why it failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "worker.py"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Job:
    """One fit-and-sample: which adapter, on which table, writing where."""

    name: str
    adapter: str
    params: dict
    train: str
    rows: int
    folder: Path
    seed: int = 0
    threads: int = 2
    epsilon: float | None = None
    schema: str | None = None

    def document(self) -> dict:
        return {"adapter": self.adapter, "params": self.params, "train": self.train, "rows": self.rows,
                "seed": self.seed, "threads": self.threads, "epsilon": self.epsilon, "schema": self.schema,
                "workdir": str(self.folder / "work"), "out": str(self.synthetic), "report": str(self.report)}

    @property
    def synthetic(self) -> Path:
        return self.folder / "synthetic.parquet"

    @property
    def report(self) -> Path:
        return self.folder / "report.json"


@dataclass(frozen=True)
class Outcome:
    """A finished job (report set) or why it did not finish (status)."""

    status: str
    report: dict | None = None


def run(job: Job, python: str, timeout_s: float, extra_env: dict[str, str] | None = None) -> Outcome:
    job.folder.mkdir(parents=True, exist_ok=True)
    job_file = job.folder / "job.json"
    job_file.write_text(json.dumps(job.document()))
    threads = str(job.threads)
    env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONWARNINGS": "ignore",
                        "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"} | (extra_env or {})
    log_path = job.folder / "log.txt"
    with open(log_path, "w") as log:
        process = subprocess.Popen([python, str(WORKER), str(job_file)], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO, env=env, start_new_session=True)
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the worker's own group: it and any children it started
            process.wait()
            return Outcome(f"timed out after {timeout_s:.0f} s")
    if code < 0:
        return Outcome(f"crashed: killed by signal {-code} (out of memory?)")
    if code != 0 or not job.report.is_file():
        return Outcome(f"crashed: {last_error(log_path.read_text())}")
    return Outcome("ok", json.loads(job.report.read_text()))


def last_error(log: str) -> str:
    """The exception line of a traceback (the last line naming an error), else the last line, shortened."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line.split(":")[0] or "Exception" in line.split(":")[0]]
    line = (errors or lines or ["no output"])[-1]
    head, _, rest = line.partition(": ")
    if rest and "." in head and " " not in head:  # tabsynth.errors.ModelError: ... -> ModelError: ...
        line = f"{head.rsplit('.', 1)[1]}: {rest}"
    return line if len(line) <= 160 else line[:157] + "..."
