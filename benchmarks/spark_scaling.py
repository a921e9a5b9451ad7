"""The Spark path against DuckDB: the count queries of a `dp-marginal` fit, answered by both, checked equal, timed
as Spark's local mode gets more executor threads (issue 21).

1. `generate`: duckdb_10m's 12-column table (its `generate_chunk`, the same rows for the same `--rows`), written
   in row groups of `--row-group-rows` rows, so that Spark and DuckDB can split even a 1M-row file over threads.
2. `duckdb`: dp-marginal is fitted through `DuckDBCounts`, recording every count query the fit asks (the domain
   step's category and bound counts, the fine histograms, AIM's candidate marginals: `code_counts` of every 1-,
   2- and 3-way clique of the encoded columns); then the recorded queries are asked again of a fresh
   `DuckDBCounts` and timed. Its answers are the reference.
3. `spark`: for each master (`local[1]`, `local[2]`, `local[4]`), a fresh process starts a Spark session (timed
   apart from the queries), asks the same queries of `SparkCounts` and saves the answers, which must equal
   DuckDB's exactly. The CPU seconds are those of the whole process tree (Python and the JVM) over each step.
4. `spark-fit` (`--spark-fit`): dp-marginal fitted end to end through Spark at the fastest master.

The shared machine has 2 cores: `local[4]` shows that more threads than cores cannot help. 10M rows (default)
take minutes; `--rows 100000000` works (2.3 GB of Parquet) but each Spark scan then takes many minutes on 2 cores.
Each step runs in its own process (a fresh JVM per master); the table is generated in a temporary folder and
removed afterwards. Results: results/spark_scaling.{csv,md} (the CSV keeps earlier runs, one row per step).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/spark_scaling.py [--rows 10000000] [--masters local[1] local[2]]
        [--repeats 2] [--spark-fit] [--note TEXT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, machine, write_results  # noqa: E402
from duckdb_10m import CHUNK, DELTA, EPSILON, generate_chunk  # noqa: E402

MASTERS = ("local[1]", "local[2]", "local[4]")
ROW_GROUP_ROWS = 250_000
PACKAGES = ("pyspark", "duckdb", "pyarrow", "numpy")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- the table --------------------------------------------------------------------------------------------------


def generate(path: Path, rows: int, row_group_rows: int) -> dict:
    """duckdb_10m.generate's rows (same seed, same chunks), in smaller row groups: the unit of a parallel scan."""
    rng, writer = np.random.default_rng(0), None
    for start in range(0, rows, CHUNK):
        table = generate_chunk(min(CHUNK, rows - start), rng)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=row_group_rows)
    writer.close()
    return {"bytes": path.stat().st_size, "row_groups": pq.ParquetFile(path).num_row_groups}


# ---- the queries of a fit, recorded and replayed ----------------------------------------------------------------


class Recorder:
    """Counts that pass every query on to `counts` and keep its arguments: what a dp-marginal fit asks."""

    def __init__(self, counts):
        self.counts, self.domain, self.codes = counts, [], []

    def domain_counts(self, categories, buckets):
        self.domain.append((list(categories), list(buckets)))
        return self.counts.domain_counts(categories, buckets)

    def code_counts(self, codecs, cliques):
        self.codes.append((list(codecs), list(cliques)))
        return self.counts.code_counts(codecs, cliques)

    def __getattr__(self, name):
        return getattr(self.counts, name)


def save_queries(recorder: Recorder, schema, folder: Path) -> dict:
    """The recorded queries as JSON + npz (no pickle); AIM's pool is widened to every 1-, 2- and 3-way clique."""
    from tabsynth.table.codecs import Encoding

    document, arrays = {"schema": schema.to_dict(), "domain": [], "codes": []}, {}
    for d, (categories, buckets) in enumerate(recorder.domain):
        arrays |= {f"d{d}_b{b}": grid for b, (_, grid, _) in enumerate(buckets)}
        document["domain"].append({"categories": categories, "buckets": [[c.name, s] for c, _, s in buckets]})
    for q, (codecs, cliques) in enumerate(recorder.codes):
        names = [c.name for c in codecs]
        if q == len(recorder.codes) - 1:  # AIM's candidate pool: ask every clique of up to three columns
            cliques = list(dict.fromkeys([*cliques, *(c for k in (1, 2, 3) for c in itertools.combinations(names, k))]))
        metas, codec_arrays = Encoding(tuple(codecs)).state()
        arrays |= {f"q{q}_{key}": value for key, value in codec_arrays.items()}
        document["codes"].append({"codecs": metas, "cliques": [list(c) for c in cliques]})
    (folder / "queries.json").write_text(json.dumps(document))
    np.savez(folder / "queries.npz", **arrays)
    return {"domain_queries": len(document["domain"]), "code_queries": len(document["codes"]),
            "cliques": [len(q["cliques"]) for q in document["codes"]]}


def load_queries(folder: Path):
    from tabsynth.table.codecs import Encoding
    from tabsynth.table.schema import Schema

    document, arrays = json.loads((folder / "queries.json").read_text()), np.load(folder / "queries.npz")
    schema = Schema.from_dict(document["schema"])
    domain = [(d["categories"], [(schema[name], arrays[f"d{i}_b{b}"], side)
                                 for b, (name, side) in enumerate(d["buckets"])])
              for i, d in enumerate(document["domain"])]
    codes = []
    for q, query in enumerate(document["codes"]):
        prefix = f"q{q}_"
        codec_arrays = {key[len(prefix):]: arrays[key] for key in arrays.files if key.startswith(prefix)}
        codecs = Encoding.from_state(query["codecs"], codec_arrays).codecs
        codes.append((list(codecs), [tuple(c) for c in query["cliques"]]))
    return schema, domain, codes


def replay(counts, domain, codes, repeats: int) -> tuple[dict, dict]:
    """Ask the recorded queries `repeats` times, each timed (wall and process-tree CPU); the last answers."""
    times, answers = {}, {"categories": [], "buckets": [], "codes": []}
    steps = [*(("domain", query, counts.domain_counts) for query in domain),
             *(("codes", query, counts.code_counts) for query in codes)]
    for run in range(repeats):
        answers = {"categories": [], "buckets": [], "codes": []}
        for i, (kind, query, ask) in enumerate(steps):
            with TreeTimer() as timer:
                found = ask(*query)
            times[f"q{i}_seconds_{run}"], times[f"q{i}_cpu_{run}"] = timer.seconds, timer.cpu_seconds
            if kind == "domain":
                answers["categories"].append({name: sorted(c.items(), key=repr) for name, c in found[0].items()})
                answers["buckets"].append(found[1])
            else:
                answers["codes"].append({"|".join(clique): array for clique, array in found.items()})
    return times, answers


def step_names(domain, codes) -> list[str]:
    """What each replayed query is, in order: `replay`'s q0, q1, ..."""
    return [*(f"domain step ({len(c)} category lists, {len(b)} bound histograms)" for c, b in domain),
            *(f"code_counts of {len(cliques)} cliques" for _, cliques in codes)]


def total(phase: dict, run: int) -> float:
    """Seconds of all the fit's queries in run `run`."""
    return sum(phase[f"q{i}_seconds_{run}"] for i in range(len(phase["steps"])))


def save_answers(answers: dict, path: Path) -> None:
    path.with_suffix(".json").write_text(json.dumps(answers["categories"]))
    arrays = {f"b{d}_{b}": a for d, buckets in enumerate(answers["buckets"]) for b, a in enumerate(buckets)}
    arrays |= {f"c{q}_{clique}": a for q, found in enumerate(answers["codes"]) for clique, a in found.items()}
    np.savez(path.with_suffix(".npz"), **arrays)


def compare_answers(reference: Path, other: Path) -> tuple[bool, str]:
    """Exactly equal answers? And how many were compared (or the first that differs)."""
    cats = [json.loads(p.with_suffix(".json").read_text()) for p in (reference, other)]
    arrays = [np.load(p.with_suffix(".npz")) for p in (reference, other)]
    if cats[0] != cats[1]:
        return False, "category counts differ"
    if set(arrays[0].files) != set(arrays[1].files):
        return False, "different queries answered"
    for key in arrays[0].files:
        if not np.array_equal(arrays[0][key], arrays[1][key]):
            return False, f"{key} differs"
    cells = sum(arrays[0][key].size for key in arrays[0].files)
    categories = sum(len(found) for query in cats[0] for found in query.values())
    return True, f"{len(arrays[0].files)} arrays ({cells:,} cells) and {categories} category counts equal"


class TreeTimer:
    """Wall seconds, and CPU seconds of this process and every live descendant (the JVM of a Spark session)."""

    def __enter__(self):
        self.start, self.cpu_start = time.perf_counter(), tree_cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = tree_cpu_seconds() - self.cpu_start


def tree_cpu_seconds(root: int | None = None) -> float:
    """utime + stime (all threads, and reaped children) of `root` and its live descendants, from /proc."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    pending, total = [root or os.getpid()], 0
    while pending:
        pid = pending.pop()
        total += stats.get(pid, (0, 0))[1]
        pending += [child for child, (parent, _) in stats.items() if parent == pid]
    return total / CLK_TCK


# ---- the phases (each in its own process) -----------------------------------------------------------------------


def duckdb_phase(data: Path, work: Path, repeats: int) -> dict:
    from tabsynth.models.dp_marginal import DPMarginal
    from tabsynth.privacy.budget import Budget
    from tabsynth.privacy.mechanisms import RandomSource
    from tabsynth.scale.duckdb_counts import DuckDBCounts
    from tabsynth.table.infer import infer_schema

    with DuckDBCounts(data) as counts:
        schema = infer_schema(counts.sample_frame(100_000, seed=1))
        recorder = Recorder(counts)
        with TreeTimer() as fitting:
            DPMarginal().fit(recorder, schema, budget=Budget(EPSILON, DELTA, RandomSource.system()))
    recorded = save_queries(recorder, schema, work)
    _, domain, codes = load_queries(work)
    with TreeTimer() as opening:
        counts = DuckDBCounts(data)
    with counts:
        times, answers = replay(counts, domain, codes, repeats)
    save_answers(answers, work / "answers-duckdb")
    return recorded | times | {"steps": step_names(domain, codes), "fit_seconds": fitting.seconds,
                               "fit_cpu": fitting.cpu_seconds, "open_seconds": opening.seconds,
                               "open_cpu": opening.cpu_seconds, "threads": os.cpu_count()}


def spark_phase(data: Path, work: Path, master: str, repeats: int) -> dict:
    from tabsynth.scale.spark import SparkCounts, spark_session

    _, domain, codes = load_queries(work)
    with TreeTimer() as starting:
        spark = spark_session(master)
    with TreeTimer() as opening:
        counts = SparkCounts(spark, data)
    times, answers = replay(counts, domain, codes, repeats)
    save_answers(answers, work / f"answers-{tag(master)}")
    partitions = spark.read.parquet(str(data)).rdd.getNumPartitions()
    threads = spark.sparkContext.defaultParallelism
    spark.stop()
    return times | {"steps": step_names(domain, codes), "threads": threads,
                    "start_seconds": starting.seconds, "start_cpu": starting.cpu_seconds,
                    "open_seconds": opening.seconds, "open_cpu": opening.cpu_seconds, "partitions": partitions}


def spark_fit_phase(data: Path, work: Path, master: str) -> dict:
    from tabsynth.privacy.budget import Budget
    from tabsynth.privacy.mechanisms import RandomSource
    from tabsynth.run.spark import fit_from_counts
    from tabsynth.scale.spark import SparkCounts, spark_session

    schema, _, _ = load_queries(work)
    with TreeTimer() as starting:
        counts = SparkCounts(spark_session(master), data)
    with TreeTimer() as fitting:
        model = fit_from_counts(counts, schema, Budget(EPSILON, DELTA, RandomSource.system()))
    counts.spark.stop()
    return {"start_seconds": starting.seconds, "fit_seconds": fitting.seconds, "fit_cpu": fitting.cpu_seconds,
            "measurements": len(model.privacy_["measurements"])}


def tag(master: str) -> str:
    return master.replace("[", "-").replace("]", "").replace("*", "all")


def run_phase(args: list[str]) -> dict:
    """One phase in a fresh process; its result, wall seconds and the load average around it."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"phase {args[:2]} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result | {"wall_seconds": time.perf_counter() - started, "load_before": load_before,
                     "load_after": os.getloadavg()[0]}


def child(args) -> None:
    data, work = Path(args.paths[0]), Path(args.paths[1])
    if args.phase == "generate":
        result = generate(data, args.rows, args.row_group_rows)
    elif args.phase == "duckdb":
        result = duckdb_phase(data, work, args.repeats)
    elif args.phase == "spark":
        result = spark_phase(data, work, args.master, args.repeats)
    else:
        result = spark_fit_phase(data, work, args.master)
    print(json.dumps(result))


# ---- the report -------------------------------------------------------------------------------------------------


def commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return found.stdout.strip() + ("+changes" if dirty else "")


def query_rows(engine: str, phase: dict, rows: int, repeats: int, check: str) -> list[dict]:
    base = {"engine": engine, "rows": rows, "threads": phase.get("threads", ""),
            "partitions": phase.get("partitions", ""),
            "load before/after": f"{phase['load_before']:.1f}/{phase['load_after']:.1f}", "equal to DuckDB": check}
    out = []
    if "start_seconds" in phase:
        out.append(base | {"step": "start session", "run": "", "seconds": phase["start_seconds"],
                           "CPU s": phase["start_cpu"]})
    out.append(base | {"step": "open table", "run": "", "seconds": phase["open_seconds"], "CPU s": phase["open_cpu"]})
    for run in range(repeats):
        label = "cold" if run == 0 else f"warm {run}"
        for i, step in enumerate(phase["steps"]):
            out.append(base | {"step": step, "run": label, "seconds": phase[f"q{i}_seconds_{run}"],
                               "CPU s": phase[f"q{i}_cpu_{run}"]})
    return out


def reading(duck: dict, sparks: dict[str, dict], fit: dict | None, repeats: int) -> str:
    last = repeats - 1
    queries = {master: total(phase, last) for master, phase in sparks.items()}
    parts = [f"All the fit's queries ({'warm' if last else 'cold'} run): DuckDB {total(duck, last):.1f} s; "
             + ", ".join(f"Spark {m} {s:.1f} s" for m, s in queries.items()) + "."]
    if "local[1]" in queries and "local[2]" in queries:
        parts.append(f"local[1] -> local[2]: x{queries['local[1]'] / queries['local[2]']:.2f} as fast"
                     + (f"; local[4] on 2 cores: x{queries['local[2]'] / queries['local[4]']:.2f} of local[2]"
                        if "local[4]" in queries else "") + ".")
    best = min(queries, key=queries.get)
    spark = sparks[best]
    slowest = max(range(len(spark["steps"])), key=lambda i: spark[f"q{i}_seconds_{last}"])
    parts.append(f"At {best}: session start {spark['start_seconds']:.1f} s, open {spark['open_seconds']:.1f} s, "
                 f"queries {queries[best]:.1f} s, of which {spark['steps'][slowest]} "
                 f"{spark[f'q{slowest}_seconds_{last}']:.1f} s; Spark's queries take "
                 f"x{queries[best] / total(duck, last):.1f} DuckDB's time.")
    if fit:
        parts.append(f"dp-marginal fitted end to end through Spark at {fit['master']}: {fit['fit_seconds']:.1f} s "
                     f"(through DuckDB: {duck['fit_seconds']:.1f} s).")
    return " ".join(parts)


def report(args, phases: dict, checks: dict[str, tuple[bool, str]], note: str) -> None:
    rows, repeats, duck = args.rows, args.repeats, phases["duckdb"]
    table = query_rows("DuckDB", duck, rows, repeats, "reference")
    sparks = {m: phases[f"spark {m}"] for m in args.masters}
    for master, phase in sparks.items():
        table += query_rows(f"Spark {master}", phase, rows, repeats, "yes" if checks[master][0] else "NO")
    fits = [("DuckDB", duck)] + ([(f"Spark {phases['spark fit']['master']}", phases["spark fit"])]
                                 if "spark fit" in phases else [])
    table += [{"engine": engine, "rows": rows, "step": "fit dp-marginal", "run": "", "seconds": phase["fit_seconds"],
               "CPU s": phase["fit_cpu"], "load before/after": f"{phase['load_before']:.1f}/{phase['load_after']:.1f}"}
              for engine, phase in fits]
    for row in table:
        row["seconds"], row["CPU s"] = round(row["seconds"], 2), round(row["CPU s"], 2)
    text = reading(duck, sparks, phases.get("spark fit"), repeats)
    stamp = {"date": date.today().isoformat(), "commit": commit(), "machine": machine()}
    generated = phases["generate"]
    checked = "; ".join(f"{m}: {'equal' if ok else 'DIFFERENT'} ({detail})" for m, (ok, detail) in checks.items())
    header = (f"commit {stamp['commit']} · {rows:,} rows, 12 columns, {generated['bytes'] / 2**20:.0f} MiB of "
              f"Parquet in {generated['row_groups']} row groups · DuckDB {duck['threads']} threads · CPU: the "
              f"process tree (Python + JVM) · nice 19 on a machine shared with other jobs"
              + (f" · {note}" if note else "") + f"\n\nSpark's answers against DuckDB's: {checked}")
    csv_path = RESULTS / "spark_scaling.csv"
    earlier = pd.read_csv(csv_path) if csv_path.exists() else None
    print(write_results("spark_scaling", table, "Spark local mode against DuckDB: the count queries of a "
                        "dp-marginal fit", PACKAGES, note=f"{header}\n\nReading: {text}"))
    frame = pd.DataFrame([row | stamp for row in table])
    (pd.concat([earlier, frame], ignore_index=True) if earlier is not None else frame).to_csv(csv_path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--row-group-rows", type=int, default=ROW_GROUP_ROWS)
    parser.add_argument("--masters", nargs="+", default=list(MASTERS))
    parser.add_argument("--repeats", type=int, default=1, help="times each query is asked (the first is cold)")
    parser.add_argument("--spark-fit", action="store_true", help="also fit dp-marginal through Spark")
    parser.add_argument("--note", default="")
    parser.add_argument("--phase", choices=["generate", "duckdb", "spark", "spark-fit"])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.phase:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="tabsynth-spark-scaling-"))
    data, common = work / "table.parquet", ["--repeats", str(args.repeats)]
    try:
        phases = {"generate": run_phase(["--phase", "generate", "--rows", str(args.rows), "--row-group-rows",
                                         str(args.row_group_rows), str(data), str(work)])}
        print("generate", phases["generate"], flush=True)
        phases["duckdb"] = run_phase(["--phase", "duckdb", *common, str(data), str(work)])
        print("duckdb", phases["duckdb"], flush=True)
        checks = {}
        for master in args.masters:
            phases[f"spark {master}"] = run_phase(["--phase", "spark", "--master", master, *common, str(data),
                                                   str(work)])
            checks[master] = compare_answers(work / "answers-duckdb", work / f"answers-{tag(master)}")
            print(f"spark {master}", phases[f"spark {master}"], "equal to DuckDB:", checks[master], flush=True)
        if args.spark_fit:
            best = min(args.masters, key=lambda m: total(phases[f"spark {m}"], args.repeats - 1))
            phases["spark fit"] = run_phase(["--phase", "spark-fit", "--master", best, str(data), str(work)]) | {
                "master": best}
            print("spark fit", phases["spark fit"], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, phases, checks, args.note)
    if not all(equal for equal, _ in checks.values()):
        raise SystemExit("Spark's answers differ from DuckDB's")


if __name__ == "__main__":
    main()
