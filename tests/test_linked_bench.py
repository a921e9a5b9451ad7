"""The linked benchmark's own plumbing (benchmarks/linked_peers.py): the split by person and the way PAR's output
(events with their person's columns) is turned back into two tables. The peers themselves are not run here."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "peers"))

import linked_adapters  # noqa: E402
import linked_data  # noqa: E402

RELATIONS = {"tables": {
    "patients": {"primary_key": "id"},
    "episodes": {"primary_key": "episode", "order_by": "t",
                 "foreign_keys": [{"column": "id", "references": "patients.id"}]}}}
SPEC = {"root": "patients", "child": "episodes", "root_key": "id", "child_key": "episode", "foreign_key": "id",
        "order_by": "t"}


def frames() -> dict[str, pd.DataFrame]:
    patients = pd.DataFrame({"id": range(10), "sex": ["f", "m"] * 5, "t": range(100, 110)})  # "t" in both
    episodes = pd.DataFrame({"episode": range(25), "id": [i % 10 for i in range(25)], "t": range(25),
                             "status": [i % 2 for i in range(25)]})
    return {"patients": patients, "episodes": episodes}


def test_split_by_person_keeps_every_person_whole():
    dataset = linked_data.LinkedDataset("toy", frames(), RELATIONS, ("patients", "sex"), "")
    train, holdout = linked_data.split_persons(dataset, share=0.2, seed=0)
    assert len(holdout["patients"]) == 2 and len(train["patients"]) == 8
    assert set(holdout["episodes"]["id"]) <= set(holdout["patients"]["id"])
    assert set(train["episodes"]["id"]) <= set(train["patients"]["id"])
    assert len(train["episodes"]) + len(holdout["episodes"]) == 25


def test_par_rows_split_back_into_persons_and_events():
    joined, context, original = linked_adapters._joined(frames(), SPEC)
    assert context == ["sex", "patients.t"] and len(joined) == 25  # the clashing name is prefixed
    assert (joined.groupby("id")["sex"].nunique() == 1).all()
    joined["id"] = "seq-" + joined["id"].astype(str)  # a peer's own sequence keys
    tables = linked_adapters._split_back(joined, SPEC, context, original, list(frames()["episodes"].columns), "id")
    patients, episodes = tables["patients"], tables["episodes"]
    assert list(patients.columns) == ["id", "sex", "t"] and len(patients) == 10
    assert list(episodes.columns) == ["episode", "id", "t", "status"] and episodes["episode"].is_unique
    assert set(episodes["id"]) == set(patients["id"])
    merged = episodes.merge(patients, on="id", suffixes=("", "_person"))
    assert (merged.groupby("id")["t_person"].nunique() == 1).all()
