"""Shared set-up for benchmarks: the fixed Adult split, timing, peak memory, result files."""

from __future__ import annotations

import csv
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
# The shared copy beside the checkout; from a worktree (/work/wt/<name>) that is two folders up.
ADULT = next((folder / "shared" / "datasets" / "adult.csv" for folder in ROOT.parents
              if (folder / "shared" / "datasets" / "adult.csv").exists()),
             ROOT.parent / "shared" / "datasets" / "adult.csv")
RESULTS = Path(__file__).resolve().parent / "results"


def adult_split(seed: int = 0):
    """UCI Adult, fixed 80/20 split (seed 0), with tabsynth's inferred schema."""
    raw = read_table(ADULT)
    schema = infer_schema(raw)
    train, holdout = split(conform(raw, schema), 0.2, np.random.default_rng(seed))
    return train, holdout, schema


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def versions(*packages: str) -> str:
    found = []
    for package in packages:
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} missing")
    return ", ".join(found)


def write_results(name: str, rows: list[dict], title: str, packages: tuple[str, ...]) -> str:
    """CSV plus a Markdown table (with date, machine and versions) in benchmarks/results/."""
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{name}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    frame = pd.DataFrame(rows)
    markdown = (f"# {title}\n\n{date.today().isoformat()} · {machine()} · {versions(*packages)}\n\n"
                f"{frame.to_markdown(index=False, floatfmt='.4g')}\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    return markdown
