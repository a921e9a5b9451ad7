"""A per-person differentially private release of linked tables: preflight → read → check keys → debit the ledger
once for the dataset → split by person → DP facts and event domains (one row per person) → one person row each
(`models.linked.person_rows`) → dp-argn (DP-SGD over person rows, Poisson-sampled; its noisy row count is the
noisy person count) → unfold into tables → checks → gate on DP or public inputs → publish.

Neighbouring datasets differ by one whole person (a root row and every row hanging from it). Every statistic that
reaches the model, its output, the manifest or the decision is declared or measured with DP at sensitivity one
per person; what the checks read from the private rows goes to the internal-only assessment.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.io.digest import table_digest
from tabsynth.models.base import create_model
from tabsynth.models.linked.person_rows import (
    check_person_layout,
    event_columns,
    fold,
    unfold,
    wide_schema,
)
from tabsynth.privacy import spending
from tabsynth.privacy.person_facts import one_row_per_person, pay_for_event_domains, pay_for_person_facts
from tabsynth.publish import manifest as manifest_lib
from tabsynth.publish.dataset_folder import block_dataset, publish_dataset
from tabsynth.publish.gate import evaluate
from tabsynth.run.dataset import (
    check_persons,
    dataset_checks,
    declared_schemas,
    input_and_split,
    read_frames,
    split_persons,
    with_dataset,
    with_fakes,
    with_key_ids,
    within_bounds,
)
from tabsynth.run.options import DatasetOptions, Progress, ReleaseResult
from tabsynth.run.plan import conform_rows, output_schema, privacy_metrics
from tabsynth.table.dataset import Relations, check_rows
from tabsynth.table.schema import Schema

MODEL = "dp-argn"  # the one model with per-person DP for linked tables (through the person rows)
NOT_MODELLED = ("the rows of a person beyond the first max_events of a child table (in its order) are not modelled: "
                "L is public (declared, or the default), so the statement reveals no count")


def person_dp_request(options: DatasetOptions, policy) -> tuple[spending.Request, dict[str, int]]:
    """Before any row is read: the model, the tables' shape, the (ε, δ) within the policy, the ledger identity."""
    if options.model not in ("auto", MODEL):
        raise InputError(f"model {options.model!r} has no per-person differential privacy for linked tables; use "
                         f"--model {MODEL} (nothing was spent)")
    caps = check_person_layout(options.relations)
    request = spending.plan(True, policy, options.epsilon, options.delta, MODEL)
    spending.declared_identity(None, options.source_id, policy)
    create_model(MODEL, **options.model_params)  # a bad parameter fails here, before anything is spent
    return request, caps


def release_dataset_dp(options: DatasetOptions, policy, sink, say: Progress) -> ReleaseResult:
    request, caps = person_dp_request(options, policy)
    relations = options.relations
    frames = read_frames(options, say)
    check_rows(relations, frames)
    check_persons(frames, relations)
    say("debiting the privacy ledger", 0.05)
    budget, ledger = spending.charge(request, source=_ledger_source(options, frames), policy=policy, model=MODEL,
                                     ledger_url=options.ledger, note=f"release (per person) to {options.out}")
    rng = np.random.default_rng(options.seed)
    train, holdout = split_persons(frames, relations, policy.holdout_share, rng)
    schemas, budget, facts = person_schemas(train, relations, declared_schemas(relations, options.schemas), budget)
    train = {n: conform_rows(f, schemas[n], True) for n, f in train.items()}
    holdout = {n: conform_rows(f, schemas[n], True) for n, f in holdout.items()}
    say(f"fitting {MODEL} on person rows", 0.1)
    started = time.perf_counter()
    model = create_model(MODEL, **options.model_params)
    model.fit(fold(train, relations, schemas, caps), wide_schema(relations, schemas, caps), budget=budget, rng=rng)
    timings = {"fit_seconds": time.perf_counter() - started}
    persons = options.rows or model.rows_  # the noisy person count
    say(f"sampling {persons:,} persons", 0.5)
    started = time.perf_counter()
    public = {n: output_schema(s, True) for n, s in schemas.items()}
    synthetic, clipped = within_bounds(unfold(model.sample(persons, rng=rng), relations, schemas, caps), public)
    synthetic = with_fakes(synthetic, schemas, rng, frozenset())  # no real PII value is read to avoid it
    timings["sample_seconds"] = time.perf_counter() - started
    say("validating", 0.72)
    metrics, linked_names = dataset_checks(train, holdout, synthetic, relations, schemas, options, private=True)
    metrics += privacy_metrics(model)
    verdict = evaluate(policy.for_dataset(), metrics, private=True)
    facts["dataset"] = {"linked_checks": linked_names}
    manifest, internal = _manifest(options, policy, relations, schemas, verdict, metrics, frames, train, holdout,
                                   timings, model, ledger, caps, facts,
                                   {"persons": persons, "persons_source": "--rows" if options.rows else
                                    "noisy person count", "rows": {n: len(t) for n, t in synthetic.items()},
                                    "clipped_to_bounds": clipped})
    say("writing release", 0.85)
    if not verdict.passed:
        block_dataset(options, manifest, train, synthetic, relations, schemas, verdict)
    files = {"synthetic": options.flat.join(synthetic, relations)} if options.flat else None
    out = publish_dataset(options, manifest, train, synthetic, relations, schemas, sink, files, internal)
    say("done", 1.0)
    return ReleaseResult(out, verdict, manifest, None, tables=synthetic)


def person_schemas(train: dict[str, pd.DataFrame], relations: Relations, declared: dict[str, Schema | None],
                   budget) -> tuple[dict[str, Schema], object, dict]:
    """Each table's schema for the fit: declared, or measured with DP with each person one row of each
    measurement; a child table's event columns with their domains declared (measured once for all positions)."""
    root = relations.root()
    chooser = np.random.default_rng()  # OS entropy: which of a person's rows votes is nobody's to know
    samples = {root: train[root]} | {name: one_row_per_person(train[name], relations.tables[name].foreign_keys[0]
                                                              .column, chooser) for name in relations.children(root)}
    schemas, budget, facts = pay_for_person_facts(samples, declared, budget)
    schemas = {name: with_key_ids(schema, relations.tables[name]) for name, schema in schemas.items()}
    children = [name for name in samples if name != root]
    conformed = {name: conform_rows(samples[name], schemas[name], True) for name in children}
    columns, budget, domains = pay_for_event_domains(
        conformed, {name: event_columns(relations, schemas[name], name) for name in children}, budget)
    for name, measured in columns.items():
        for column in measured:
            schemas[name] = schemas[name].replace(column.name, declared=column.declared)
    return schemas, budget, {"schema_facts": facts, "event_domains": domains}


def _ledger_source(options: DatasetOptions, frames: dict[str, pd.DataFrame]) -> spending.Source:
    """The declared --source-id, else a digest of every table's rows (kept in the ledger, out of the manifest)."""
    if options.source_id:
        return spending.Source(options.source_id, options.relations.root())
    digest = "+".join(f"{name}:{table_digest(frames[name])}" for name in sorted(frames))
    return spending.Source(f"dataset-sha256:{table_digest(pd.DataFrame({'d': [digest]}))}",
                           f"dataset {options.relations.root()}", declared=False)


class PersonDPModel:
    """What the manifest records of the model: dp-argn on person rows, and what it spent per person."""

    differentially_private = True

    def __init__(self, model, caps: dict[str, int]):
        self.name = f"linked {MODEL} (one row per person)"
        self._params = model.get_params() | {"max_events": caps}
        self.privacy_ = {**model.privacy_, "unit": "person", "neighbouring": "add or remove one person: their "
                         "row of the person table and every row hanging from it",
                         "not_modelled": NOT_MODELLED}

    def get_params(self) -> dict:
        return self._params


def _manifest(options, policy, relations, schemas, verdict, metrics, frames, train, holdout, timings, model,
              ledger, caps, facts, sampling) -> tuple[dict, dict]:
    record = PersonDPModel(model, caps)
    manifest, internal = manifest_lib.build(
        options=options, schema=schemas[relations.root()], policy=policy.for_dataset(), model=record,
        verdict=verdict, metrics=metrics, **input_and_split(policy, relations, frames, train, holdout),
        timings=timings, sampling=sampling, ledger=ledger)
    manifest["split"]["unit"] = "person"
    manifest["privacy"]["note"] = ("the true numbers of persons and rows are withheld; the synthetic persons number "
                                   "a noisy person count")
    manifest = with_dataset(manifest, options, relations, schemas,
                            {**facts.pop("dataset"), "max_events": caps, "not_modelled": NOT_MODELLED})
    manifest |= facts
    manifest["warnings"] = list(model.privacy_.get("warnings", []))
    return manifest, internal
