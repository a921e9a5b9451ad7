"""Linked tables and sequences: tabsynth's linked `argn` against SDV HMA, SDV PAR and MOSTLY AI's sequential
TabularARGN on R's survival::cgd (patients -> infection episodes) and nycflights13 (planes -> flights).

    python benchmarks/linked_peers.py [--full] [--datasets cgd flights] [--only TEXT] [--planes N]
                                      [--timeout S] [--epochs N] [--param TEXT:KEY=VALUE] [--keep DIR]
                                      [--score DIR] [--name NAME]

Each dataset is split 80/20 by person (seed 0; benchmarks/peers/linked_data.py). Every system fits the training
persons in its own environment (benchmarks/peers/.envs/, installed by envs.py), in a subprocess with one thread
and a wall-clock limit, samples as many persons as were trained on and writes each table to Parquet. A scoring
step in tabsynth's venv then runs `tabsynth.metrics.linked.linked_metrics` against the training persons, with
the held-out persons as the privacy baseline and TSTR test set, and writes benchmarks/results/<name>.{csv,md}
(name: linked_peers, or linked_peers_quick without --full). `--keep DIR` keeps the synthetic tables;
`--score DIR` scores a kept run again (say, once the metrics changed) without refitting. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import envs  # noqa: E402
import jobs  # noqa: E402
import linked_data  # noqa: E402
import report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = {"quick": 420, "full": 2 * 3600}


@dataclass(frozen=True)
class LinkedSystem:
    label: str
    env: str
    adapter: str
    params: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)  # overrides in quick mode
    epochs_key: str | None = None

    def settings(self, full: bool, epochs: int | None) -> dict:
        params = dict(self.params) if full else self.params | self.quick
        if epochs is not None and self.epochs_key:
            params[self.epochs_key] = epochs
        return params


SYSTEMS = (
    LinkedSystem("tabsynth argn", envs.TABSYNTH_ENV, "tabsynth_linked", {"model": "argn"}, {"epochs": 20}, "epochs"),
    LinkedSystem("SDV HMA", "sdv", "sdv_hma", {"verbose": False}),
    # PAR's default is 128 epochs; its LSTM runs over every padded sequence each epoch (slow on 1 thread).
    LinkedSystem("SDV PAR", "sdv", "sdv_par", {"epochs": 128, "verbose": False}, {"epochs": 10}, "epochs"),
    LinkedSystem("MOSTLY AI TabularARGN (sequential)", "mostlyai", "mostlyai_sequential", {},
                 {"max_epochs": 10, "max_training_time": 1.5}, "max_epochs"),
)


@dataclass(frozen=True)
class LinkedJob:
    """One fit-and-sample of a linked dataset (the shape `jobs.run` needs: folder, document(), report)."""

    adapter: str
    params: dict
    tables: dict[str, str]
    persons: int
    spec: dict
    folder: Path
    seed: int = 0
    threads: int = 1

    def document(self) -> dict:
        return {"adapter": self.adapter, "params": self.params, "tables": self.tables, "persons": self.persons,
                "spec": self.spec, "seed": self.seed, "threads": self.threads, "workdir": str(self.folder / "work"),
                "out": str(self.synthetic), "report": str(self.report)}

    @property
    def synthetic(self) -> Path:
        return self.folder / "synthetic"

    @property
    def report(self) -> Path:
        return self.folder / "report.json"


@dataclass
class Prepared:
    dataset: linked_data.LinkedDataset
    train: dict[str, pd.DataFrame]
    holdout: dict[str, pd.DataFrame]
    schemas: dict
    spec: dict
    tables: dict[str, str]


def prepare(name: str, args, folder: Path) -> Prepared:
    dataset = linked_data.flights(args.planes) if name == "flights" else linked_data.DATASETS[name]()
    train, holdout = linked_data.split_persons(dataset)
    schemas = linked_data.schemas(dataset, train)
    relations = dataset.relations
    root = relations.root()
    (child,) = [n for n in relations.names if n != root]
    fk = relations.tables[child].foreign_keys[0]
    spec = {"root": root, "child": child, "root_key": relations.tables[root].primary_key,
            "child_key": relations.tables[child].primary_key, "foreign_key": fk.column,
            "order_by": relations.tables[child].order_by, "relations": dataset.raw_relations,
            "kinds": {t: {c.name: c.kind for c in s.columns} for t, s in schemas.items()},
            "schemas": {t: s.to_dict() for t, s in schemas.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    tables = {}
    for table, frame in train.items():
        tables[table] = str(folder / f"train_{table}.parquet")
        frame.to_parquet(tables[table], index=False)
        holdout[table].to_parquet(folder / f"holdout_{table}.parquet", index=False)
    (folder / "spec.json").write_text(json.dumps(spec, default=str))
    return Prepared(dataset, train, holdout, schemas, spec, tables)


def describe(params: dict) -> str:
    shown = {k: v for k, v in params.items() if k not in ("model", "verbose")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "defaults"


def selected(system: LinkedSystem, only: str | None) -> bool:
    """`--only`: comma-separated texts, a system is run if its label contains one of them."""
    return not only or any(part.strip().lower() in system.label.lower() for part in only.split(","))


def overrides(system: LinkedSystem, given: list[str]) -> dict:
    """`--param TEXT:KEY=VALUE`: KEY set to VALUE (read as JSON, else as text) for the systems whose label
    contains TEXT."""
    found = {}
    for item in given:
        text, _, setting = item.partition(":")
        key, _, value = setting.partition("=")
        if text.lower() in system.label.lower():
            try:
                found[key] = json.loads(value)
            except json.JSONDecodeError:
                found[key] = value
    return found


def fit_one(system: LinkedSystem, prepared: Prepared, env: envs.EnvStatus, args, folder: Path) -> dict:
    params = system.settings(args.full, args.epochs) | overrides(system, args.param)
    row = {"dataset": prepared.dataset.name, "system": system.label, "status": "", "settings": describe(params),
           "fitted": time.strftime("%H:%M", time.gmtime()), "load": round(os.getloadavg()[0], 1)}
    if env.python is None:
        return row | {"status": f"not installed: {env.reason}"}
    if system.env == envs.TABSYNTH_ENV:
        params = {"device": "cpu", "threads": args.threads} | params
        extra = {"PYTHONPATH": str(REPO)}  # this worktree's tabsynth, not the one the venv was installed from
    else:
        extra = {"PYTHONPATH": ""}
    job = LinkedJob(system.adapter, params, prepared.tables, len(prepared.train[prepared.spec["root"]]),
                    prepared.spec, folder, threads=args.threads)
    outcome = jobs.run(job, env.python, args.timeout, extra)
    if outcome.report is None:
        return row | {"status": outcome.status}
    return row | {"status": "ok", "fit s": outcome.report["fit_s"], "sample s": outcome.report["sample_s"],
                  "peak MB": outcome.report["peak_mb"],
                  "rows": ", ".join(f"{t} {n}" for t, n in outcome.report["rows"].items())}


def score(row: dict, prepared: Prepared, folder: Path) -> dict:
    """The row with every linked metric, or with why it was not scored."""
    if row["status"] != "ok":
        return row
    try:
        from tabsynth.metrics.linked import linked_metrics
    except ImportError as exc:
        return row | {"status": f"ok, not scored ({exc})"}
    synthetic = {t: pd.read_parquet(folder / "synthetic" / f"{t}.parquet") for t in prepared.train}
    try:
        results = linked_metrics(prepared.train, synthetic, prepared.dataset.relations, prepared.schemas,
                                 holdout=prepared.holdout, target=prepared.dataset.target, rng=0)
    except Exception as exc:  # a malformed synthetic dataset is a result to report
        return row | {"status": f"metrics failed: {jobs.last_error(f'{type(exc).__name__}: {exc}')}"}
    values = {r.name: (r.value if r.is_valid else math.nan) for r in results}
    GOALS.update({r.name: r.goal for r in results})
    failed = [r.name for r in results if r.name.startswith("check_error")]
    if failed:
        row = row | {"status": f"ok; metric errors: {', '.join(failed)}"}
    return row | values


def run_dataset(name: str, args, scratch: Path, environments: dict) -> tuple[list[dict], str]:
    folder = scratch / name
    prepared = prepare(name, args, folder)
    rows = []
    for index, system in enumerate(SYSTEMS):
        if not selected(system, args.only):
            rows.append({"dataset": name, "system": system.label, "status": f"not run (--only {args.only})"})
            continue
        system_folder = folder / f"system-{index}"
        if args.score:
            saved = system_folder / "row.json"
            if not saved.is_file():
                continue
            row = json.loads(saved.read_text())
        else:
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {system.label}", flush=True)
            row = fit_one(system, prepared, environments[system.env], args, system_folder)
            system_folder.mkdir(parents=True, exist_ok=True)
            (system_folder / "row.json").write_text(json.dumps(row))
        rows.append(score(row, prepared, system_folder))
        print(f"    {rows[-1]['status']}", flush=True)
    rows.append(reference(prepared))
    return rows, prepared.dataset.note


REFERENCE = "real holdout (reference)"
GOALS: dict[str, str] = {}  # metric name -> min / max / target, as the metrics say


def reference(prepared: Prepared) -> dict:
    """The held-out real persons scored as if they were synthetic: how far a real sample of 20 % of the persons
    lies from the training persons (the sampling noise floor of the fidelity figures; no privacy or TSTR figure,
    which need a separate holdout)."""
    row = {"dataset": prepared.dataset.name, "system": REFERENCE, "status": "ok", "settings": "–"}
    try:
        from tabsynth.metrics.linked import linked_metrics
    except ImportError as exc:
        return row | {"status": f"not scored ({exc})"}
    results = linked_metrics(prepared.train, prepared.holdout, prepared.dataset.relations, prepared.schemas, rng=0)
    return row | {r.name: (r.value if r.is_valid else math.nan) for r in results}


def metric_table(rows: list[dict]) -> str:
    """Metrics as rows, systems as columns (there are many metrics and few systems)."""
    frame = pd.DataFrame(rows).set_index("system")
    metric_columns = [c for c in frame.columns if c not in COST_COLUMNS]
    if not metric_columns:
        return ""
    # `<metric>.<table>` equals `<metric>` (the worst table) when the metric has one table: shown once
    shown = [c for c in metric_columns if not ("." in c and c.split(".")[0] in metric_columns
                                               and sum(m.startswith(c.split(".")[0] + ".") for m in metric_columns)
                                               == 1)]
    table = frame[shown].T.apply(pd.to_numeric, errors="coerce")
    table.insert(0, "goal", [GOALS.get(name, "") for name in table.index])
    return markdown(table.reset_index(names="metric"))


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (pandas' to_markdown needs tabulate, not a tabsynth dependency): numbers to 4 significant
    digits, a missing value as a dash."""
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


COST_COLUMNS = ("dataset", "status", "settings", "fitted", "load", "fit s", "sample s", "peak MB", "rows")


def commit() -> str:
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return (done.stdout.strip() or "unknown") + (" (uncommitted changes)" if dirty else "")


def write(name: str, rows: list[dict], notes: list[str], header: dict) -> str:
    report.RESULTS.mkdir(exist_ok=True)
    report.write_csv(report.RESULTS / f"{name}.csv", [{"date": header["date"]} | r for r in rows])
    run = (f"scored {header['date']} from kept fits (each row says when it was fitted, at which load average)"
           if header["scored_only"] else
           f"{header['date']} · whole run {header['wall_s'] / 60:.1f} min (load average {header['load']:.1f} at "
           f"start, {header['load_end']:.1f} at the end)")
    text = [f"# Linked tables and sequences: tabsynth against its peers ({header['mode']} mode)", "",
            f"{report.machine()} · {run} · this worktree at commit {commit()}", "",
            "Versions:", header["versions"], ""]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        chosen = [r for r in rows if r["dataset"] == dataset]
        costs = pd.DataFrame(chosen)[[c for c in COST_COLUMNS if c in pd.DataFrame(chosen).columns and c != "dataset"]]
        costs.insert(0, "system", [r["system"] for r in chosen])
        costs = costs[[c for c in costs.columns if c != "status"] + ["status"]]
        text += [f"## {dataset}", "", header["notes"].get(dataset, ""), "",
                 markdown(costs), "", metric_table(chosen), ""]
    text += notes
    page = "\n".join(text) + "\n"
    (report.RESULTS / f"{name}.md").write_text(page)
    return page


METRICS_NOTE = (
    "Metrics: tabsynth.metrics.linked against the training persons (goal: min, max or target; `<metric>` alone is "
    "the worst table, a metric of one table is shown once). person_dcr_share and person_membership are 0.5 when "
    "the synthetic persons are no closer to the training persons than to the held-out ones; TSTR: a model trained "
    "on synthetic persons, tested on the held-out persons. The reference row scores the held-out 20 % of real "
    "persons as if synthetic: a real sample a quarter the size of the synthetic one, so its TVDs are an upper "
    "bound on the sampling noise, not a floor.")
QUICK_NOTE = ("Quick mode: tabsynth argn 20 epochs, SDV PAR 10 epochs (its default is 128), MOSTLY AI at most 10 "
              "epochs and 1.5 minutes of training per model (persons, events); SDV HMA has no epochs.")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the systems' default epochs (hours)")
    parser.add_argument("--datasets", nargs="+", default=["cgd", "flights"], choices=sorted(linked_data.DATASETS))
    parser.add_argument("--only", help="run only the systems whose label contains one of these comma-separated texts")
    parser.add_argument("--planes", type=int, default=linked_data.PLANES, help="planes in the flights subset")
    parser.add_argument("--timeout", type=float, help="seconds allowed per fit (quick 420, full 7200)")
    parser.add_argument("--epochs", type=int, help="override every system's epochs (smoke test)")
    parser.add_argument("--param", action="append", default=[], metavar="TEXT:KEY=VALUE",
                        help="set a parameter of the systems whose label contains TEXT (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per fit (default 1)")
    parser.add_argument("--keep", help="keep the training split and the synthetic tables in this folder")
    parser.add_argument("--score", help="score the synthetic tables kept in this folder by --keep; fit nothing")
    parser.add_argument("--note", action="append", default=[], help="a line added below the tables (repeatable)")
    parser.add_argument("--name", help="results file name (default linked_peers, quick mode linked_peers_quick)")
    args = parser.parse_args(argv)
    args.timeout = args.timeout or TIMEOUT_S["full" if args.full else "quick"]
    args.name = args.name or ("linked_peers" if args.full else "linked_peers_quick")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    started, load = time.perf_counter(), os.getloadavg()[0]
    chosen = [s for s in SYSTEMS if selected(s, args.only)]
    needed = {s.env for s in chosen} | {envs.TABSYNTH_ENV}
    environments = {n: (envs.ensure(n) if not args.score else envs.EnvStatus(n, None, "scoring only"))
                    for n in sorted(needed)}
    if args.score:
        scratch = Path(args.score)
    elif args.keep:
        scratch = Path(args.keep)
        scratch.mkdir(parents=True, exist_ok=True)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="tabsynth-linked-"))
    rows, notes = [], {}
    try:
        for dataset in args.datasets:
            found, notes[dataset] = run_dataset(dataset, args, scratch, environments)
            rows += found
    finally:
        if not (args.score or args.keep):
            shutil.rmtree(scratch, ignore_errors=True)
    versions_file = scratch / "versions.json"
    if args.score and versions_file.is_file():  # the versions of the run that fitted
        versions, failures = json.loads(versions_file.read_text()), {}
    else:
        versions = {n: envs.versions(s) for n, s in environments.items()}
        failures = {n: s.reason for n, s in environments.items()}
        if args.keep:
            versions_file.write_text(json.dumps(versions))
    header = {"mode": "full" if args.full else "quick", "wall_s": time.perf_counter() - started, "load": load,
              "scored_only": bool(args.score),
              "load_end": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "notes": notes, "versions": report.versions_line(versions, failures)}
    settings = [f"Every fit ran in its own process with {args.threads} CPU thread(s) and at most "
                f"{args.timeout:.0f} s; each system sampled as many persons as it was trained on.",
                "" if args.full else QUICK_NOTE,
                "Smoke-test settings (overridden epochs): not comparable results." if args.epochs else "",
                f"Scored again from {args.score}: the costs are those of the original run." if args.score else "",
                METRICS_NOTE, *args.note]
    print(write(args.name, rows, [s for s in settings if s], header))


if __name__ == "__main__":
    main()
