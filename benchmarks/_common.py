"""Shared set-up for benchmarks: the fixed Adult split, timing, peak memory, result files."""

from __future__ import annotations

import csv
import os
import platform
import resource
import time
from datetime import date
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.io.files import read_table
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.split import split

ROOT = Path(__file__).resolve().parents[1]
# The shared copy beside the checkout, or beside the folder holding it (a worktree under /work/wt/<name>).
ADULT = next((found for found in (folder / "shared" / "datasets" / "adult.csv" for folder in ROOT.parents)
              if found.exists()), ROOT.parent / "shared" / "datasets" / "adult.csv")
RESULTS = Path(__file__).resolve().parent / "results"


def adult_split(seed: int = 0):
    """UCI Adult, fixed 80/20 split (seed 0), with tabsynth's inferred schema."""
    raw = read_table(ADULT)
    schema = infer_schema(raw)
    train, holdout = split(conform(raw, schema), 0.2, np.random.default_rng(seed))
    return train, holdout, schema


class Timer:
    """Wall seconds, and CPU seconds of this process (all its threads): on shared cores the CPU time is the
    steadier figure."""

    def __enter__(self):
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def versions(*packages: str) -> str:
    found = []
    for package in packages:
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} missing")
    return ", ".join(found)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: the machine is shared, so every timing is read beside them."""
    return "load " + " / ".join(f"{value:.2f}" for value in os.getloadavg())


def write_results(name: str, rows: list[dict], title: str, packages: tuple[str, ...], note: str = "") -> str:
    """CSV (this run) plus a Markdown table (with date, machine, versions and load) in benchmarks/results/;
    the Markdown file keeps the earlier runs below this one, as history."""
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{name}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)
    frame = pd.DataFrame(rows)
    header = f"{date.today().isoformat()} · {machine()} · {versions(*packages)} · {load_average()}"
    run = "\n\n".join(part for part in (header, note, markdown_table(frame)) if part) + "\n"
    path = RESULTS / f"{name}.md"
    earlier = path.read_text().split("\n", 1)[1].strip() if path.exists() else ""  # below the old title
    path.write_text(f"# {title}\n\n{run}" + (f"\n{earlier}\n" if earlier else ""))
    return run


def markdown_table(frame: pd.DataFrame) -> str:
    """The frame as a Markdown table (tabulate's when installed; else a plain one: no optional package needed)."""
    try:
        return frame.to_markdown(index=False, floatfmt=".4g")
    except ImportError:
        cells = frame.astype(object).where(frame.notna(), "")
        lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
        lines += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
                  for row in cells.itertuples(index=False)]
        return "\n".join(lines)
