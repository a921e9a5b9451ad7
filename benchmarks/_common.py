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
# the checkout's sibling shared/ folder, or its grandparent's (a git worktree one level further down)
SHARED = next((p / "shared" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()),
              ROOT.parent / "shared")
ADULT = SHARED / "datasets" / "adult.csv"
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
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)
    markdown = (f"# {title}\n\n{date.today().isoformat()} · {machine()} · {versions(*packages)}\n\n"
                f"{markdown_table(pd.DataFrame(rows))}\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    return markdown


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
