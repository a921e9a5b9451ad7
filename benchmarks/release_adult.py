"""Wall time and peak memory of the whole `tabsynth release` command on UCI Adult.

Target (issue 21): at most 8 s (was under 60 s, issue 3) on a 2-core machine, with `--model copula` (the default,
`--model auto`, fits argn on Adult: about two minutes, recorded by default_model.py). Runs the installed command
in a subprocess, three times, and records wall and CPU seconds with the load (the cores are shared) in
benchmarks/results/release_adult.{csv,md}.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ADULT, write_results

TARGET_SECONDS = 8


def one_run(out: Path) -> dict:
    command = [str(Path(sys.executable).with_name("tabsynth")), "release", str(ADULT), "--out", str(out),
               "--model", "copula"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"command": "tabsynth release adult.csv --model copula", "wall s": seconds, "cpu s": cpu,
            "peak child RSS MB": after.ru_maxrss / 1024, "load 1 min": os.getloadavg()[0]}


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
    print(f"slowest run {worst:.1f} s (target <= {TARGET_SECONDS} s): {'met' if worst <= TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
