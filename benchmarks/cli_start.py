"""How long the command line takes to answer when it has nothing heavy to do: help and the model list (and the
Spark command line's help).

Each command runs `--runs` times (default 5) in a fresh process, as a user types it; the wall seconds are the
process's whole life, interpreter start included. Goal (issue 18): under 1 s each. The 1-minute load average
is recorded beside the figures, since the machine is shared.
Run: `.venv/bin/python benchmarks/cli_start.py [--runs 5]`; writes results/cli_start.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from _common import RESULTS, machine, versions

GOAL_SECONDS = 1.0
BIN = Path(sys.executable).parent
COMMANDS = (
    [str(BIN / "tabsynth"), "--help"],
    [str(BIN / "tabsynth"), "models"],
    [str(BIN / "tabsynth"), "release", "--help"],
    [sys.executable, "-m", "tabsynth.cli.spark", "fit", "--help"],
)
BEFORE = ("Before issue 18 (commit ce61af2), `tabsynth models` took 4.5 s on this machine: it imported every model "
          "class (torch, opacus, the SDV packages) to learn whether it is differentially private. The registry now "
          "says so itself (`tabsynth/models/registry.py`), and a command imports what it needs when it runs. The "
          "Spark job's help (`python -m tabsynth.run.spark_job fit --help`, now `tabsynth.cli.spark`) took 1.4 s.")


def wall_seconds(command: list[str], runs: int) -> list[float]:
    """Wall seconds of `runs` fresh runs of `command` (each must succeed)."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return seconds


def shown(command: list[str]) -> str:
    return " ".join(Path(part).name if i == 0 else part for i, part in enumerate(command))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    lines = ["| command | runs | min s | median s | max s | under 1 s |", "|:--|--:|--:|--:|--:|:--|"]
    for command in COMMANDS:
        seconds = wall_seconds(command, runs)
        row = (f"| `{shown(command)}` | {runs} | {min(seconds):.3f} | {statistics.median(seconds):.3f} "
               f"| {max(seconds):.3f} | {max(seconds) < GOAL_SECONDS} |")
        print(row)
        lines.append(row)
    when = datetime.now().strftime("%Y-%m-%dT%H:%M")
    header = (f"# Command-line start: help and the model list\n\n{when} · {machine()} · "
              f"load average (1 min) {os.getloadavg()[0]:.2f} · {versions('tabsynth', 'click', 'rich')}\n")
    (RESULTS / "cli_start.md").write_text(header + "\n" + "\n".join(lines) + "\n\n" + BEFORE + "\n")


if __name__ == "__main__":
    main()
