"""Releasing linked tables: read → check keys → schemas → split by person → fit → sample → validate → gate →
publish one folder (a file per table, one manifest, one report).

The unit of the split, the risk checks and (once a DP model for linked tables exists) the ledger is the person:
a row of the root table and every row that hangs from it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.errors import InputError
from tabsynth.io.sql_dataset_sink import check_dataset_sink, parse_dataset_sink
from tabsynth.metrics.checks import CheckOptions, run_checks, run_one
from tabsynth.metrics.linked import linked_metrics
from tabsynth.metrics.result import MetricResult
from tabsynth.models.linked import LinkedSynthesizer
from tabsynth.publish import manifest as manifest_lib
from tabsynth.publish.dataset_folder import block_dataset, publish_dataset
from tabsynth.publish.gate import evaluate
from tabsynth.publish.policy import load_policy
from tabsynth.run.options import DatasetOptions, Progress, ReleaseResult
from tabsynth.run.plan import check_output
from tabsynth.sample.identifiers import add_identifiers
from tabsynth.table.dataset import Relations, check_rows
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema

MIN_PERSONS = 10


def release_linked(options: DatasetOptions, policy, sink, say: Progress) -> ReleaseResult:
    """The release without differential privacy (`run.linked_release` routes a DP one to `run.dataset_dp`)."""
    relations = options.relations
    frames = read_frames(options, say)
    check_rows(relations, frames)
    schemas = dataset_schemas(frames, relations, options.schemas)
    frames = {name: conform(frame, schemas[name]) for name, frame in frames.items()}  # text dates parsed
    check_persons(frames, relations)
    rng = np.random.default_rng(options.seed)
    train, holdout = split_persons(frames, relations, policy.holdout_share, rng)
    say(f"fitting {options.model} on {len(train[relations.root()]):,} persons", 0.1)
    started = time.perf_counter()
    model = LinkedSynthesizer(options.model, **options.model_params).fit(train, relations, schemas, rng=rng)
    timings = {"fit_seconds": time.perf_counter() - started}
    persons = options.rows or len(train[relations.root()])
    say(f"sampling {persons:,} persons", 0.5)
    started = time.perf_counter()
    synthetic, clipped = within_bounds(model.sample(persons, rng=rng), schemas)
    synthetic = with_fakes(synthetic, schemas, rng, _real_pii(frames, schemas))
    timings["sample_seconds"] = time.perf_counter() - started
    say("validating", 0.72)
    metrics, linked_names = dataset_checks(train, holdout, synthetic, relations, schemas, options)
    verdict = evaluate(policy.for_dataset(), metrics)
    manifest = _manifest(options, policy, relations, schemas, verdict, metrics, frames, train, holdout, timings,
                         synthetic, linked_names, clipped)
    say("writing release", 0.85)
    if not verdict.passed:
        block_dataset(options, manifest, train, synthetic, relations, schemas, verdict)
    files = {"synthetic": options.flat.join(synthetic, relations)} if options.flat else None
    out = publish_dataset(options, manifest, train, synthetic, relations, schemas, sink, files)
    say("done", 1.0)
    return ReleaseResult(out, verdict, manifest, None, tables=synthetic)


def preflight(options: DatasetOptions):
    """Everything that needs no row: the policy, the persons asked for, the output folder, the keys declared, the
    database sink."""
    policy = load_policy(options.policy)
    if options.rows is not None and options.rows < 1:
        raise InputError(f"--rows (persons) must be a positive number, got {options.rows}")
    check_output(Path(options.out), None, options.overwrite)
    options.relations.check()
    sink = parse_dataset_sink(options.out_table, options.out_url, options.replace)
    check_dataset_sink(sink, options.relations.names)
    return policy, sink


def wants_dp(options: DatasetOptions, policy) -> bool:
    """Whether the release is per-person DP: asked for by --epsilon/--delta, the policy or the model's name."""
    return (options.epsilon is not None or options.delta is not None or policy.privacy.require_dp
            or options.model.startswith("dp-"))


def read_frames(options: DatasetOptions, say: Progress) -> dict[str, pd.DataFrame]:
    from tabsynth.table.dataset import read_dataset

    say("reading tables", 0.02)
    return dict(options.frames) if options.frames is not None else read_dataset(options.relations)


def check_persons(frames: dict[str, pd.DataFrame], relations: Relations) -> None:
    persons = len(frames[relations.root()])
    if persons < MIN_PERSONS:
        raise InputError(f"{relations.root()}: {persons} persons; at least {MIN_PERSONS} are needed to fit a model "
                         "and keep a holdout for the privacy checks")


def dataset_schemas(frames: dict[str, pd.DataFrame], relations: Relations,
                    declared: dict[str, Schema] | None = None) -> dict[str, Schema]:
    """Each table's schema inferred over the steward's, with every primary and foreign key an identifier."""
    users = declared_schemas(relations, declared)
    return {name: with_key_ids(infer_schema(frames[name], user=users[name]), spec)
            for name, spec in relations.tables.items()}


def declared_schemas(relations: Relations, declared: dict[str, Schema] | None) -> dict[str, Schema | None]:
    """The steward's schema of each table: given from the API, else the dataset YAML's schema file, else none."""
    return {name: (declared or {}).get(name) or (Schema.load(spec.schema) if spec.schema else None)
            for name, spec in relations.tables.items()}


def with_key_ids(schema: Schema, spec) -> Schema:
    """Every primary and foreign key of the table an identifier (regenerated, linked), in its own dtype."""
    for key in [k for k in (spec.primary_key, *(fk.column for fk in spec.foreign_keys)) if k]:
        column = schema[key]
        if column.kind != "id":
            schema = schema.replace(key, kind="id", reason="a key of the dataset (regenerated, linked)",
                                    dtype=column.dtype)
    return schema


def split_persons(frames: dict[str, pd.DataFrame], relations: Relations, holdout_share: float,
                  rng: np.random.Generator) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Each person to the holdout independently (Bernoulli), with every row that hangs from them."""
    root = relations.root()
    held = rng.random(len(frames[root])) < holdout_share
    train, holdout = {root: frames[root][~held]}, {root: frames[root][held]}
    for name in relations.parents_first():
        if name == root:
            continue
        fk = relations.tables[name].foreign_keys[0]  # the person's path; other keys are links within the tree
        parent_key = train[fk.parent][fk.parent_column]
        mine = frames[name][fk.column].isin(parent_key)
        train[name], holdout[name] = frames[name][mine], frames[name][~mine]
    return ({n: f.reset_index(drop=True) for n, f in train.items()},
            {n: f.reset_index(drop=True) for n, f in holdout.items()})


def within_bounds(tables: dict[str, pd.DataFrame], schemas: dict[str, Schema]) -> tuple[dict, dict]:
    """Numbers and dates held inside their schema bounds (a date built from generated gaps may run past the last
    real one); how many values each column had clipped, for the manifest."""
    out, clipped = {}, {}
    for name, table in tables.items():
        table = table.copy()
        for column in schemas[name].modelled():
            if column.kind not in ("numerical", "datetime") or column.name not in table:
                continue
            bounds = column.bounds()
            values = table[column.name]
            low, high = (_bound(b, values, column.kind) for b in (bounds.min, bounds.max))
            kept = values.clip(lower=low, upper=high)
            changed = int((kept != values).sum() - (kept.isna() & values.isna()).sum())
            if changed:
                clipped[f"{name}.{column.name}"] = changed
                table[column.name] = kept
        out[name] = table
    return out, clipped


def _bound(value, values: pd.Series, kind: str):
    if value is None or kind != "datetime":
        return value
    stamp, zone = pd.Timestamp(value), getattr(values.dt, "tz", None)
    if zone is not None:
        return stamp.tz_convert(zone) if stamp.tzinfo else stamp.tz_localize(zone)
    return stamp.tz_convert(None) if stamp.tzinfo else stamp


def with_fakes(tables: dict[str, pd.DataFrame], schemas: dict[str, Schema], rng: np.random.Generator,
               avoid: frozenset[str]) -> dict[str, pd.DataFrame]:
    """PII columns filled with fakes (none equal to a real value) or dropped, as in a single-table release; the
    model's keys kept."""
    out = {}
    for name, table in tables.items():
        schema = schemas[name]
        fakes = Schema(tuple(c for c in schema.columns if c.kind == "pii"))
        filled = add_identifiers(pd.DataFrame(index=table.index), fakes, len(table), rng, avoid=avoid) \
            if fakes.columns else pd.DataFrame(index=table.index)
        released = [c.name for c in schema.released()]
        out[name] = pd.concat([table.drop(columns=[c for c in filled.columns if c in table]).reset_index(drop=True),
                               filled.reset_index(drop=True)], axis=1)[released]
    return out


def _real_pii(frames: dict[str, pd.DataFrame], schemas: dict[str, Schema]) -> frozenset[str]:
    values: set[str] = set()
    for name, frame in frames.items():
        values |= pii.values_to_avoid([frame], [c.name for c in schemas[name].columns if c.kind == "pii"])
    return frozenset(values)


def dataset_checks(train, holdout, synthetic, relations: Relations, schemas: dict[str, Schema],
                   options: DatasetOptions, private: bool = False) -> tuple[list[MetricResult], list[str]]:
    """Each table's own checks (named `metric.table`, and the worst table under the plain name so one policy rule
    covers every table), and the checks of the links: keys, children per person, sequences, risk per person.
    `private` (a DP release): the synthetic rows are checked against the declared facts only."""
    target = _target(options.target, relations)
    per_table: list[MetricResult] = []
    for name in relations.names:
        links = {fk.column for fk in relations.tables[name].foreign_keys}  # repeat by design: referential_integrity
        shown = Schema.from_dict(schemas[name].public()) if private else schemas[name]
        facts = Schema(tuple(c for c in shown.columns if c.name not in links))
        check = CheckOptions(target=target[1] if target and target[0] == name else None, constraint_facts=facts,
                             random_state=0 if options.seed is None else options.seed,
                             learn_combinations=not private)
        found = run_checks(train[name], holdout[name], synthetic[name], schemas[name], check)
        per_table += [replace(m, name=f"{m.name}.{name}") for m in found]
    linked = run_one("linked tables", lambda: linked_metrics(train, synthetic, relations, schemas, holdout=holdout,
                                                             target=target))
    return [*worst_of_tables(per_table, relations.names), *per_table, *linked], [m.name for m in linked]


def worst_of_tables(per_table: list[MetricResult], tables: list[str]) -> list[MetricResult]:
    """Under each metric's plain name, its worst value across the tables (NaN if any table's is)."""
    grouped: dict[str, list[MetricResult]] = {}
    for m in per_table:
        base, _, table = m.name.rpartition(".")
        if table in tables and not base.startswith("check_error"):
            grouped.setdefault(base, []).append(m)
    out = []
    for base, results in grouped.items():
        values = [m.value if m.is_valid else float("nan") for m in results]
        worst = float("nan") if any(np.isnan(values)) else (min(values) if results[0].goal == "max" else max(values))
        out.append(MetricResult(base, worst, results[0].goal, f"{results[0].description} (worst of the tables)",
                                any(m.reads_private_rows for m in results),
                                {"tables": {m.name.rpartition(".")[2]: m.to_dict()["value"] for m in results}}))
    return out


def _target(target: str | None, relations: Relations) -> tuple[str, str] | None:
    """`--target table.column`, or a column of the person table."""
    if target is None:
        return None
    table, _, column = target.rpartition(".")
    table = table or relations.root()
    if table not in relations.tables:
        raise InputError(f"--target {target!r}: no table {table!r} in the dataset")
    return table, column


def _manifest(options, policy, relations, schemas, verdict, metrics, frames, train, holdout, timings, synthetic,
              linked_names: list[str], clipped: dict):
    manifest, _ = manifest_lib.build(
        options=options, schema=schemas[relations.root()], policy=policy.for_dataset(), model=_ModelRecord(options),
        verdict=verdict, metrics=metrics, **input_and_split(policy, relations, frames, train, holdout),
        timings=timings, sampling={"persons": len(synthetic[relations.root()]),
                                   "rows": {n: len(t) for n, t in synthetic.items()}, "clipped_to_bounds": clipped})
    return with_dataset(manifest, options, relations, schemas, {"linked_checks": linked_names})


def input_and_split(policy, relations: Relations, frames, train, holdout) -> dict:
    """manifest_lib.build's input_info and split_info for a dataset (a DP manifest keeps only their public part)."""
    root, tables = relations.root(), relations.tables
    return {"input_info": {"tables": {n: {"path": s.path, "rows": len(frames[n])} for n, s in tables.items()}},
            "split_info": {"holdout_share": policy.holdout_share, "unit": "person",
                           "method": "each person (a root row and every row hanging from it) to the holdout "
                                     "independently",
                           "train_persons": len(train[root]), "holdout_persons": len(holdout[root])}}


def with_dataset(manifest: dict, options: DatasetOptions, relations: Relations, schemas: dict[str, Schema],
                 dataset: dict) -> dict:
    """The manifest of a dataset: its relations (and `dataset`), how a flat input was split, every table's public
    schema in place of the single one."""
    manifest["dataset"] = {**relations_record(relations), **dataset}
    if options.flat:
        manifest["dataset"]["released_as_one_table"] = options.flat.record(relations)
    manifest["schemas"] = {n: s.public() for n, s in schemas.items()}
    del manifest["schema"]
    return manifest


def relations_record(relations: Relations) -> dict:
    return {"person_table": relations.root(),
            "tables": {n: {"primary_key": t.primary_key, "order_by": t.order_by,
                           "foreign_keys": [str(fk) for fk in t.foreign_keys]} for n, t in relations.tables.items()}}


class _ModelRecord:
    """What the manifest records of the linked model (it is not a single-table Synthesizer)."""

    def __init__(self, options: DatasetOptions):
        self.name = f"linked {options.model}"
        self._params = dict(options.model_params)

    def get_params(self) -> dict:
        return self._params

