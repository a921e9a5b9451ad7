"""End-to-end black-box audit of the per-person DP release of linked tables (patients → visits).

D: 40 patients with 1 to 3 visits each; D' = D + one canary patient with CANARY_VISITS visits, all in a ward no one
else has ("Zzyzx"). `ward` is left out of the declared schemas, so the release measures its facts and categories.
Each run is one `release_dataset` (dp-argn, ε = 1, δ = 1e-9, tiny network, one epoch, max_events 3); an attacker
checks whether "Zzyzx" is in the released category list (the manifest's schemas) or in the released visits. The
Clopper–Pearson bound (95 %, Bonferroni) must stay under ε for the real release, and exceed it for the mutant with
a row-level accountant: every visit votes in the child-column measurements as if it were an independent row,
so a patient with k visits is counted k times. Results: benchmarks/results/person_dp_audit.{csv,md}.

    nice .venv/bin/python benchmarks/person_dp_audit.py [--runs 40]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import platform
import shutil
import subprocess
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.errors import TabsynthError
from tabsynth.privacy import audit_e2e as audit
from tabsynth.run import dataset_dp
from tabsynth.run.linked_release import release_dataset
from tabsynth.run.options import DatasetOptions
from tabsynth.table.dataset import relations_from_dict
from tabsynth.table.schema import Column, Facts, Schema

RESULTS = Path(__file__).resolve().parent / "results"
EPSILON, DELTA, CANARY_VISITS, CANARY = 1.0, 1e-9, 400, "Zzyzx"
FAST = {"epochs": 1, "batch_size": 16, "embedding": 2, "hidden": 8, "threads": 1}
RELATIONS = relations_from_dict({"tables": {
    "patients": {"primary_key": "patient_id"},
    "visits": {"primary_key": "visit_id", "max_events": 3,
               "foreign_keys": [{"column": "patient_id", "references": "patients.patient_id"}]}}})
SCHEMAS = {  # what a steward declares without the data; visits.ward is left to be measured
    "patients": Schema((Column("patient_id", "id", "int64"),
                        Column("age", "numerical", "int64", decimals=0, declared=Facts(min=0, max=120)),
                        Column("sex", "categorical", "object", declared=Facts(categories=("F", "M"))))),
    "visits": Schema((Column("visit_id", "id", "int64"), Column("patient_id", "id", "int64")))}


def tables(with_canary: bool) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    patients = pd.DataFrame({"patient_id": np.arange(1, 41), "age": rng.integers(20, 90, 40),
                             "sex": rng.choice(["F", "M"], 40)})
    owners = np.repeat(patients["patient_id"], rng.integers(1, 4, 40))
    wards = rng.choice(["cardio", "ortho", "general"], len(owners))
    if with_canary:
        patients = pd.concat([patients, pd.DataFrame({"patient_id": [41], "age": [50], "sex": ["F"]})])
        owners, wards = np.append(owners, [41] * CANARY_VISITS), np.append(wards, [CANARY] * CANARY_VISITS)
    visits = pd.DataFrame({"visit_id": np.arange(1, len(owners) + 1), "patient_id": owners, "ward": wards})
    return {"patients": patients.reset_index(drop=True), "visits": visits}


def runner(folder: Path) -> audit.Release:
    def run(which: bool) -> audit.Outcome:
        work = Path(tempfile.mkdtemp(dir=folder))
        try:
            options = DatasetOptions(relations=RELATIONS, out=work / "out", frames=tables(which), schemas=SCHEMAS,
                                     model="dp-argn", epsilon=EPSILON, delta=DELTA, policy="default",
                                     model_params=FAST, source_id=work.name,
                                     ledger=f"sqlite:///{folder / 'ledger.db'}")
            try:
                result = release_dataset(options)
            except TabsynthError as error:
                return audit.Outcome(error=str(error).splitlines()[0])
            manifest = json.loads((work / "out" / "manifest.json").read_text())
            return audit.Outcome(data=result.tables["visits"], manifest=manifest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return run


def in_domain(outcome: audit.Outcome) -> bool:
    if outcome.manifest is None:
        return False
    ward = [c for c in outcome.manifest["schemas"]["visits"]["columns"] if c["name"] == "ward"]
    return bool(ward) and CANARY in (ward[0].get("declared", {}).get("categories") or [])


EVENTS = {"refused": audit.refused, "Zzyzx in the released categories": in_domain,
          "Zzyzx in the visits": audit.category_appears("ward", CANARY)}


@contextlib.contextmanager
def row_level_accountant():
    """Mutant: every visit votes in the child-column measurements (a patient with k visits counted k times)."""
    original = dataset_dp.one_row_per_person
    dataset_dp.one_row_per_person = lambda rows, key, rng: rows
    try:
        yield
    finally:
        dataset_dp.one_row_per_person = original


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)  # 20 cannot resolve the mutant's ~70 % hit rate
    runs = parser.parse_args().runs
    rows = []
    for kind, mutant in (("real", contextlib.nullcontext), ("mutant: row-level accountant", row_level_accountant)):
        with tempfile.TemporaryDirectory() as folder, mutant(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            result = audit.audit_release(runner(Path(folder)), False, True, EVENTS, runs, DELTA)
        best = result.best_event
        rows.append({"audit": kind, "runs per side": runs, "best event": best, "hits D": result.hits_without[best],
                     "hits D'": result.hits_with[best], "ε lower bound": round(result.epsilon_lower, 3),
                     "claimed ε": EPSILON, "flagged": result.epsilon_lower > EPSILON,
                     "seconds": round(time.perf_counter() - started, 1)})
        print(rows[-1], flush=True)
    write(rows, runs)


def write(rows: list[dict], runs: int) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "person_dp_audit.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    head = (f"# Per-person DP audit of linked tables\n\n{datetime.now().isoformat(timespec='minutes')} · "
            f"`{platform.platform()}` · commit {commit} · `python benchmarks/person_dp_audit.py --runs {runs}`\n\n"
            f"D: 40 patients, 1-3 visits each; D' = D + a canary patient with {CANARY_VISITS} visits in ward "
            f"{CANARY!r}; dp-argn, ε = {EPSILON}, δ = {DELTA}, max_events 3, one epoch.\n\n")
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(value) for value in row.values()) + " |" for row in rows]
    (RESULTS / "person_dp_audit.md").write_text(head + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
