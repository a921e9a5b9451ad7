"""benchmarks/results/peers.csv and peers.md: the table, the DP workload figure, the machine and every version."""

from __future__ import annotations

import csv
import os
import platform
from datetime import date
from pathlib import Path

import pandas as pd
from envs import NOT_USED

RESULTS = Path(__file__).resolve().parents[1] / "results"


def machine() -> str:
    """`nproc`, CPU model and RAM, as the table's header states them."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{len(os.sched_getaffinity(0))} cores (nproc), {model}, {ram_gb:.0f} GiB RAM, {platform.machine()}"


def versions_line(versions: dict[str, dict[str, str]], failures: dict[str, str]) -> str:
    parts = []
    for env, packages in versions.items():
        listed = ", ".join(f"{name} {version}" for name, version in packages.items())
        reason = failures.get(env)
        parts.append(f"**{env}** env: {listed or (reason if reason == NOT_USED else f'not installed ({reason})')}")
    return "\n".join(f"- {part}" for part in parts)


def write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict]) -> str:
    """Status last (it is the long column); a missing or NaN value shows as a dash."""
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in frame.columns if c != "status"] + ["status"]]
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_markdown(index=False, floatfmt=".4g", missingval="–")


def write(name: str, rows: list[dict], workload: list[dict], header: dict, notes: list[str]) -> str:
    """Write `name`.csv and `name`.md (the main table, with the workload figure below it if both ran), or, when
    only the workload figure ran, `name`_workload.csv and `name`_workload.md; return the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    if rows:
        write_csv(RESULTS / f"{name}.csv", rows)
    if workload:
        write_csv(RESULTS / f"{name}_workload.csv", workload)
    title = "tabsynth against its peers on UCI Adult" if rows else "DP workload error on discretised Adult"
    text = [f"# {title} ({header['mode']} mode)", "",
            f"{date.today().isoformat()} · {machine()} · whole run {header['wall_s'] / 60:.1f} min "
            f"(load average {header['load']:.1f} at start, {header['load_end']:.1f} at the end)", "",
            "Versions:", header["versions"], ""]
    if rows:
        text += [markdown_table(rows), "", *notes]
    if workload:
        text += ["", "## DP workload error: mean L1 over all 3-way marginals of discretised Adult", "",
                 markdown_table(workload)]
    markdown = "\n".join(text) + "\n"
    (RESULTS / f"{name if rows else name + '_workload'}.md").write_text(markdown)
    return markdown
