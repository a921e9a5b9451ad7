"""Linked systems (one person table and one child table of ordered events): `fit(frames, params, context)`
returning a `LinkedFitted` whose `sample(n_persons)` gives `{table: frame}` with the real tables' names and
columns, keys included. Loaded by every environment: each import is inside its function.

`context.spec` says the shape: `root`, `child`, `root_key` (the person's primary key), `child_key` (the child's
primary key), `foreign_key` (the child's column pointing at the person), `order_by` (the child's event order),
`kinds` (`{table: {column: tabsynth kind}}`), `relations` (the dataset YAML as a dict) and `schemas` (tabsynth's
schema dicts).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Context:
    workdir: str
    seed: int
    threads: int
    spec: dict


@dataclass(frozen=True)
class LinkedFitted:
    sample: Callable[[int], dict[str, pd.DataFrame]]


def _seed_everything(context: Context) -> None:
    random.seed(context.seed)
    np.random.seed(context.seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(context.seed)
    torch.set_num_threads(context.threads)


def tabsynth_linked(frames: dict[str, pd.DataFrame], params: dict, context: Context) -> LinkedFitted:
    """tabsynth's `LinkedSynthesizer` (branch linked-model) with its per-table model, `argn` by default."""
    from tabsynth.models.linked import LinkedSynthesizer
    from tabsynth.table.dataset import relations_from_dict
    from tabsynth.table.schema import Schema

    _seed_everything(context)
    relations = relations_from_dict(context.spec["relations"])
    schemas = {name: Schema.from_dict(raw) for name, raw in context.spec["schemas"].items()}
    model = LinkedSynthesizer(**params).fit(frames, relations, schemas, rng=np.random.default_rng(context.seed))
    return LinkedFitted(lambda n: model.sample(n, rng=np.random.default_rng(context.seed + 1)))


# ---------------------------------------------------------------------------------------------------- SDV 2.0

SDTYPES = {"id": "id", "numerical": "numerical", "categorical": "categorical", "datetime": "datetime",
           # tabsynth's booleans here are 0/1 integers; SDV's boolean sdtype wants True/False
           "boolean": "categorical", "pii": "categorical"}


def _sdv_columns(kinds: dict[str, str], frame: pd.DataFrame) -> dict:
    columns = {}
    for name in frame.columns:
        sdtype = SDTYPES[kinds.get(name, "categorical")]
        columns[name] = {"sdtype": sdtype}
        if sdtype == "numerical" and pd.api.types.is_integer_dtype(frame[name]):
            columns[name]["computer_representation"] = "Int64"
    return columns


def sdv_hma(frames: dict[str, pd.DataFrame], params: dict, context: Context) -> LinkedFitted:
    """SDV's `HMASynthesizer`: both tables, the relationship root.root_key -> child.foreign_key; SDV 2.0's
    `sample(num_rows, main_table_name=root)` draws that many persons and their children."""
    from sdv.metadata import Metadata
    from sdv.multi_table import HMASynthesizer

    _seed_everything(context)
    spec = context.spec
    root, child = spec["root"], spec["child"]
    tables = {name: {"columns": _sdv_columns(spec["kinds"][name], frames[name])} for name in (root, child)}
    tables[root]["primary_key"] = spec["root_key"]
    tables[child]["primary_key"] = spec["child_key"]
    metadata = Metadata.load_from_dict({
        "METADATA_SPEC_VERSION": "V1", "tables": tables,
        "relationships": [{"parent_table_name": root, "child_table_name": child,
                           "parent_primary_key": spec["root_key"], "child_foreign_key": spec["foreign_key"]}]})
    synthesizer = HMASynthesizer(metadata, **params)
    synthesizer.fit({root: frames[root], child: frames[child]})
    return LinkedFitted(lambda n: dict(synthesizer.sample(num_rows=n, main_table_name=root)))


def _joined(frames: dict[str, pd.DataFrame], spec: dict) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """The child rows (without their own primary key) with their person's attributes joined on; the context
    columns' names (renamed `<root>.<column>` where a child column has the same name) and {context: root column}."""
    root, child = frames[spec["root"]], frames[spec["child"]]
    attributes = [c for c in root.columns if c != spec["root_key"]]
    renamed = {c: (f"{spec['root']}.{c}" if c in child.columns else c) for c in attributes}
    parents = root.rename(columns=renamed | {spec["root_key"]: spec["foreign_key"]})
    events = child.drop(columns=[spec["child_key"]])
    joined = events.merge(parents, on=spec["foreign_key"], how="left", validate="many_to_one")
    return joined, list(renamed.values()), {new: old for old, new in renamed.items()}


def _split_back(synthetic: pd.DataFrame, spec: dict, context_columns: list[str], original: dict[str, str],
                child_columns: list[str], person_key: str) -> dict[str, pd.DataFrame]:
    """One generated frame of events with their person's columns -> the person table and the event table, with
    new keys: persons numbered 0.., events numbered 0.. in person and event order."""
    persons = synthetic.groupby(person_key, sort=False)[context_columns].first().reset_index()
    numbers = {key: i for i, key in enumerate(persons[person_key])}
    persons[person_key] = persons[person_key].map(numbers)
    persons = persons.rename(columns=original | {person_key: spec["root_key"]})
    events = synthetic[[c for c in synthetic.columns if c not in context_columns]].copy()
    events[person_key] = events[person_key].map(numbers)
    events = events.rename(columns={person_key: spec["foreign_key"]})
    events.insert(0, spec["child_key"], np.arange(len(events)))
    return {spec["root"]: persons, spec["child"]: events[[c for c in child_columns if c in events.columns]]}


def sdv_par(frames: dict[str, pd.DataFrame], params: dict, context: Context) -> LinkedFitted:
    """SDV's `PARSynthesizer` on the child table, `sequence_key` = the foreign key, `sequence_index` = the order
    column, the person's attributes joined on as `context_columns` (constant per sequence). Persons are the
    sampled sequences' context: a person with no events cannot occur (none does in either dataset)."""
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    _seed_everything(context)
    spec = context.spec
    joined, context_columns, original = _joined(frames, spec)
    kinds = spec["kinds"][spec["child"]] | {new: spec["kinds"][spec["root"]][old] for new, old in original.items()}
    columns = _sdv_columns(kinds, joined)
    table = {"columns": columns, "sequence_key": spec["foreign_key"], "sequence_index": spec["order_by"]}
    metadata = Metadata.load_from_dict({"METADATA_SPEC_VERSION": "V1", "tables": {spec["child"]: table}})
    synthesizer = PARSynthesizer(metadata, context_columns=context_columns, **({"cuda": False} | params))
    synthesizer.fit({spec["child"]: joined})  # SDV 2.0 takes {table name: frame}
    child_columns = list(frames[spec["child"]].columns)

    def sample(n: int) -> dict[str, pd.DataFrame]:
        synthetic = synthesizer.sample_sequences(num_sequences=n)
        synthetic = synthetic[spec["child"]] if isinstance(synthetic, dict) else synthetic
        return _split_back(synthetic, spec, context_columns, original, child_columns, spec["foreign_key"])

    return LinkedFitted(sample)


# -------------------------------------------------------------------------------------- MOSTLY AI engine 2.7


def mostlyai_sequential(frames: dict[str, pd.DataFrame], params: dict, context: Context) -> LinkedFitted:
    """MOSTLY AI's two-table set-up with the engine's `TabularARGN` (split, analyze, encode, train inside `fit`):
    a flat model of the person table (`tgt_primary_key` = its key), and a sequential model of the child table
    (`tgt_context_key` = the foreign key, `tgt_primary_key` = the child's key) with the person table as context
    (`ctx_data`, `ctx_primary_key`). Sampling draws persons from the first, then each person's events from the
    second given the synthetic persons as `ctx_data`. The child rows are given sorted by person and order column:
    the engine takes the order of a sequence from the row order. `params` (max_epochs, max_training_time, ...)
    apply to each model."""
    from mostlyai.engine import TabularARGN

    _seed_everything(context)
    spec = context.spec
    root, child = frames[spec["root"]], frames[spec["child"]]
    common = {"device": "cpu", "random_state": context.seed} | params
    persons = TabularARGN(tgt_primary_key=spec["root_key"], workspace_dir=_workspace(context, "persons"), **common)
    persons.fit(root)
    events = child.sort_values([spec["foreign_key"], spec["order_by"]], kind="stable").reset_index(drop=True)
    sequences = TabularARGN(tgt_context_key=spec["foreign_key"], tgt_primary_key=spec["child_key"], ctx_data=root,
                            ctx_primary_key=spec["root_key"], workspace_dir=_workspace(context, "events"), **common)
    sequences.fit(events)

    def sample(n: int) -> dict[str, pd.DataFrame]:
        synthetic_persons = persons.sample(n_samples=n)
        synthetic_events = sequences.sample(ctx_data=synthetic_persons)
        return {spec["root"]: synthetic_persons[list(root.columns)],
                spec["child"]: synthetic_events[list(child.columns)]}

    return LinkedFitted(sample)


def _workspace(context: Context, name: str) -> Path:
    return Path(context.workdir) / name
