"""dp-marginal out of core: a 10-million-row, 12-column Parquet table fitted through DuckDB, then 10 million
synthetic rows streamed to Parquet.

Targets (issue 7): fit under 5 minutes and peak memory under 2 GB; sampling 10 million rows under 60 s, since issue 21
under 10 s; with `--rows 100000000` (issue 21) fit under 10 minutes and 2 GB, sampling under 2 minutes (1.9 GB
of Parquet generated: disk enough for two such files). `--sample-only MODEL_DIR` times the sampling step alone,
from a model folder a fit phase saved (`--phase fit TABLE MODEL_DIR`): the full run fits the table first, minutes
on a busy shared machine.
Each phase runs in its own process, so its peak memory (ru_maxrss: Python, DuckDB's threads, Arrow) is its own.
The table is generated in a temporary folder and removed afterwards.

    .venv/bin/python benchmarks/duckdb_10m.py [--rows 10000000] [--sample-only MODEL_DIR] [--note TEXT]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, versions  # noqa: E402

CHUNK = 1_000_000
EPSILON, DELTA = 1.0, 1e-9
REGIONS = [f"region-{i}" for i in range(8)]
OCCUPATIONS = [f"occupation-{i:02d}" for i in range(25)]
EDUCATION = [f"level {i}" for i in range(16)]


def generate_chunk(rows: int, rng: np.random.Generator) -> pa.Table:
    """12 columns with dependence between them: ints, floats, categories, a boolean, a date, missing values."""
    age = rng.integers(18, 91, rows)
    education = rng.integers(0, 16, rows)
    income = np.exp(9.5 + 0.05 * education + 0.01 * (age - 18) + rng.normal(0, 0.6, rows))
    joined = np.datetime64("2000-01-01") + rng.integers(0, 9000, rows).astype("timedelta64[D]")
    return pa.table({
        "age": age,
        "hours": np.clip(np.round(40 + (education - 8) * 1.5 + rng.normal(0, 8, rows)), 1, 99).astype(np.int64),
        "income": pa.array(np.round(income, 2), mask=rng.random(rows) < 0.05),
        "score": np.round(rng.normal(education / 4, 1.0, rows), 3),
        "balance": np.round(rng.normal(0, 1, rows) * income / 10, 2),
        "visits": pa.array(rng.poisson(2 + age / 30, rows), mask=rng.random(rows) < 0.03),
        "region": pa.array(np.array(REGIONS)[rng.integers(0, len(REGIONS), rows)]),
        "occupation": pa.array(np.array(OCCUPATIONS)[(education + rng.integers(0, 10, rows)) % len(OCCUPATIONS)]),
        "education": pa.array(np.array(EDUCATION)[education], mask=rng.random(rows) < 0.02),
        "sex": pa.array(np.where(rng.random(rows) < 0.5, "female", "male")),
        "married": rng.random(rows) < np.clip((age - 18) / 50, 0.05, 0.8),
        "joined": pa.array(joined.astype("datetime64[D]"), type=pa.date32()),
    })


def generate(path: Path, rows: int) -> dict:
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, CHUNK):
        table = generate_chunk(min(CHUNK, rows - start), rng)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return {"bytes": path.stat().st_size}


def fit(data: Path, model_dir: Path) -> dict:
    from tabsynth.models.base import save_model
    from tabsynth.models.dp_marginal import DPMarginal
    from tabsynth.privacy.budget import Budget
    from tabsynth.privacy.mechanisms import RandomSource
    from tabsynth.scale.duckdb_counts import DuckDBCounts
    from tabsynth.table.infer import infer_schema

    started = time.perf_counter()
    counts = DuckDBCounts(data)
    schema = infer_schema(counts.sample_frame(100_000, seed=1))
    schema_seconds = time.perf_counter() - started
    domain = time_domain_step(counts)
    model = DPMarginal().fit(counts, schema, budget=Budget(EPSILON, DELTA, RandomSource.system()))
    save_model(model, schema, model_dir)
    return {"schema_seconds": schema_seconds, "columns": len(schema.modelled()),
            "measurements": len(model.privacy_["measurements"]), "noisy_rows": model.rows_} | domain


def time_domain_step(counts) -> dict:
    """Seconds and DuckDB queries (each a scan of the table) of the domain step (fit_encoding) inside the fit:
    dp_marginal's fit_encoding and the counts' query runner are wrapped for this process only."""
    from tabsynth.models import dp_marginal

    found = {"domain_seconds": 0.0, "domain_queries": 0}
    inside, run, batches, fit_encoding = [False], counts._run, counts._batches, dp_marginal.fit_encoding

    def counted(method):
        def call(*args, **kwargs):
            found["domain_queries"] += inside[0]
            return method(*args, **kwargs)
        return call

    def timed_fit_encoding(*args, **kwargs):
        inside[0], started = True, time.perf_counter()
        try:
            return fit_encoding(*args, **kwargs)
        finally:
            inside[0], found["domain_seconds"] = False, time.perf_counter() - started

    counts._run, counts._batches, dp_marginal.fit_encoding = counted(run), counted(batches), timed_fit_encoding
    return found


def sample(model_dir: Path, out: Path, rows: int) -> dict:
    from tabsynth.models.base import load_model
    from tabsynth.run.out_of_core import write_synthetic

    model, _ = load_model(model_dir)
    rng = np.random.default_rng(0)
    written = write_synthetic(lambda count, _offset: model.sample(count, rng=rng), rows, out)
    return {"written": written, "bytes": out.stat().st_size}


def run_phase(args: list[str]) -> dict:
    """Run one phase in a fresh process; its result, seconds and peak memory."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result | {"wall_seconds": seconds, "load_before": load_before, "load_after": os.getloadavg()[0]}


def child(phase: str, paths: list[str], rows: int) -> None:
    started = time.perf_counter()
    if phase == "generate":
        result = generate(Path(paths[0]), rows)
    elif phase == "fit":
        result = fit(Path(paths[0]), Path(paths[1]))
    else:
        result = sample(Path(paths[0]), Path(paths[1]), rows)
    usage = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps(result | {"seconds": time.perf_counter() - started, "peak_mb": usage / 1024,
                               "cpu_seconds": own.ru_utime + own.ru_stime}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--phase", choices=["generate", "fit", "sample"])
    parser.add_argument("--note", default="", help="appended to the fit row's notes (what changed)")
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--sample-only", type=Path, metavar="MODEL_DIR",
                        help="time only the sampling step, from a model folder an earlier fit phase saved")
    args = parser.parse_args()
    if args.phase:
        child(args.phase, args.paths, args.rows)
        return
    if args.sample_only:
        report_sample_only(args.sample_only, args.rows, args.note)
        return
    work = Path(tempfile.mkdtemp(prefix="tabsynth-duckdb-10m-"))
    try:
        data, model_dir, synthetic = work / "table.parquet", work / "model", work / "synthetic.parquet"
        phases = {"generate": run_phase(["--phase", "generate", "--rows", str(args.rows), str(data)])}
        print("generated", phases["generate"], flush=True)
        phases["fit"] = run_phase(["--phase", "fit", str(data), str(model_dir)])
        print("fit", phases["fit"], flush=True)
        phases["sample"] = run_phase(["--phase", "sample", "--rows", str(args.rows), str(model_dir), str(synthetic)])
        print("sample", phases["sample"], flush=True)
        print("phases", json.dumps(phases), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(phases, args.rows, args.note)


def report_sample_only(model_dir: Path, rows: int, note: str) -> None:
    """The sampling step alone (the full run fits the 10M-row table first: minutes on a busy shared machine)."""
    work = Path(tempfile.mkdtemp(prefix="tabsynth-duckdb-10m-"))
    try:
        sample_ = run_phase(["--phase", "sample", "--rows", str(rows), str(model_dir), str(work / "s.parquet")])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("sample", sample_, flush=True)
    row = sample_row(sample_, f"sampling step alone, model fitted separately; {note}".rstrip("; "))
    print(write_tables("duckdb_10m", [row], f"dp-marginal out of core: sampling {rows:,} rows of the 12-column "
                       "model to Parquet (sampling step alone); machine shared with other jobs"))


def targets(rows: int) -> dict[str, int]:
    """Issue 21's goals in seconds: 10M rows fit < 5 min, sample <= 10 s; 100M rows fit < 10 min, sample < 2 min."""
    return {"fit": 600, "sample": 120} if rows >= 100_000_000 else {"fit": 300, "sample": 10}


def sample_row(sample_: dict, note: str = "") -> dict:
    return {"phase": "sample to Parquet in chunks", "rows": sample_["written"],
            "seconds": round(sample_["seconds"], 1), "target s": targets(sample_["written"])["sample"],
            "peak MB": round(sample_["peak_mb"]),
            "target MB": None, "load avg before/after": f"{sample_['load_before']:.1f}/{sample_['load_after']:.1f}",
            "notes": f"{sample_['bytes'] / 2**20:.0f} MiB written" + _cpu_note(sample_) + (f"; {note}" if note else "")}


def _cpu_note(phase: dict) -> str:
    """The phase's CPU seconds (every thread), steadier than wall time on a shared machine; absent in old runs."""
    return f"; CPU {phase['cpu_seconds']:.1f} s" if "cpu_seconds" in phase else ""


def report(phases: dict, rows: int, note: str = "") -> None:
    note = f"; {note}" if note else ""
    fit_, sample_ = phases["fit"], phases["sample"]
    result_rows = [
        {"phase": "fit dp-marginal through DuckDB", "rows": rows, "seconds": round(fit_["seconds"], 1),
         "target s": targets(rows)["fit"], "peak MB": round(fit_["peak_mb"]), "target MB": 2048,
         "load avg before/after": f"{fit_['load_before']:.1f}/{fit_['load_after']:.1f}",
         "notes": f"schema from a 100k-row sample in {fit_['schema_seconds']:.1f} s; "
                  f"domain step {fit_['domain_seconds']:.1f} s in {fit_['domain_queries']} queries; "
                  f"{fit_['measurements']} measurements; ε={EPSILON:g}, δ={DELTA:g}{note}"},
        sample_row(sample_),
    ]
    title = (f"dp-marginal out of core: {rows:,}-row, 12-column Parquet table through DuckDB "
             f"(generated: {phases['generate']['bytes'] / 2**20:.0f} MiB); machine shared with other jobs")
    print(write_tables("duckdb_10m", result_rows, title))


def write_tables(name: str, rows: list[dict], title: str) -> str:
    """Rows appended to the CSV and a section appended to the Markdown in benchmarks/results (earlier runs stay;
    plain Markdown: no optional table package needed)."""
    stamp = f"{date.today().isoformat()} · {machine()} · {versions('duckdb', 'pyarrow', 'numpy', 'pandas')}"
    RESULTS.mkdir(exist_ok=True)
    csv_path, md_path = RESULTS / f"{name}.csv", RESULTS / f"{name}.md"
    new = not csv_path.exists()
    with open(csv_path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "date", "machine"])
        if new:
            writer.writeheader()
        writer.writerows(row | {"date": date.today().isoformat(), "machine": machine()} for row in rows)
    cells = [[str(value if value is not None else "") for value in row.values()] for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + ["| " + " | ".join(c) + " |"
                                                                             for c in cells]
    markdown = f"# {title}\n\n{stamp}\n\n" + "\n".join(lines) + "\n"
    earlier = md_path.read_text() + "\n" if md_path.exists() else ""
    md_path.write_text(earlier + markdown)
    return markdown


if __name__ == "__main__":
    main()
