"""Wall time and peak memory of the whole `tabsynth release` command on UCI Adult.

Target (issue 3): under 60 s on a 2-core machine, with `--model copula` (the default, `--model auto`, fits
argn on Adult: about two minutes, recorded by default_model.py). Runs the installed command in a subprocess,
three times, and records the figures in benchmarks/results/release_adult.{csv,md}.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ADULT, write_results

TARGET_SECONDS = 60


def one_run(out: Path) -> dict:
    command = [str(Path(sys.executable).with_name("tabsynth")), "release", str(ADULT), "--out", str(out),
               "--model", "copula"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"command": "tabsynth release adult.csv --model copula", "wall s": seconds, "peak child RSS MB": peak_mb}


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for attempt in range(3):
            out = Path(folder) / f"release{attempt}"
            rows.append(one_run(out) | {"run": attempt + 1})
            shutil.rmtree(out)
    print(write_results("release_adult", rows, "`tabsynth release` on UCI Adult (32,561 rows, 15 columns)",
                        ("tabsynth", "copulas", "pandas")))
    worst = max(r["wall s"] for r in rows)
    print(f"slowest run {worst:.1f} s (target < {TARGET_SECONDS} s): {'met' if worst < TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
