"""Wires the stages: preflight → (ledger debit) → read → schema → split → fit → sample → validate → gate → release."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.errors import InputError
from tabsynth.io import sql, sql_sink
from tabsynth.io.atomic import check_can_create
from tabsynth.io.files import FORMATS, file_sha256
from tabsynth.models import auto
from tabsynth.models.base import create_model, is_private
from tabsynth.models.memory import check_memory
from tabsynth.privacy import spending
from tabsynth.privacy.facts import conform_values, few_rows_warning, pay_for_facts
from tabsynth.release import manifest as manifest_lib
from tabsynth.release.gate import Verdict, evaluate
from tabsynth.release.policy import Policy, load_policy, target_metric_problems
from tabsynth.release.publish import block, publish, publish_with_table
from tabsynth.sample.identifiers import add_identifiers
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema
from tabsynth.table.split import split
from tabsynth.validate.checks import CheckOptions, run_checks
from tabsynth.validate.result import MetricResult

MIN_ROWS = 10
Progress = Callable[[str, float], None]  # (what is happening, share of the whole job done)


@dataclass
class ReleaseOptions:
    data: Path | str  # a file path, or a database URL read with `table` or `query`
    out: Path
    model: str = auto.AUTO  # or a registered name; auto picks by the policy and the table (models/auto.py)
    rows: int | None = None
    schema: Path | None = None
    seed: int | None = None
    policy: str = "default"
    fmt: str = "parquet"
    overwrite: bool = False
    model_params: dict = field(default_factory=dict)
    epsilon: float | None = None
    delta: float | None = None
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    constraints: Path | None = None
    source_id: str | None = None
    ledger: str | None = None
    table: str | None = None
    query: str | None = None
    out_table: str | None = None  # also write the synthetic rows to this table ([schema.]name)
    out_url: str | None = None  # the database for out_table [default: the source's]
    replace: bool = False  # let out_table replace an existing table
    engine: str = "memory"  # or "duckdb": dp-marginal through DuckDB, for tables larger than memory
    model_choice: dict | None = None  # who chose the model and why (`with_choice`); for the manifest


@dataclass
class ReleaseResult:
    out: Path
    verdict: Verdict
    manifest: dict
    synthetic: pd.DataFrame


@dataclass(frozen=True)
class Plan:
    """Everything decided before the data is read."""

    policy: Policy
    model: object
    user_schema: Schema | None
    constraints: tuple
    request: spending.Request | None
    target: str | None
    sensitive: tuple[str, ...]
    source: Path | sql.SqlSource
    sink: sql_sink.SqlSink | None = None
    ledger_source: str | None = None


def release(options: ReleaseOptions, progress: Progress | None = None) -> ReleaseResult:
    """Run every stage; publish the folder only if the gate passes, else raise ReleaseBlocked."""
    say = progress or (lambda *_: None)
    plan = preflight(options)
    say("reading table", 0.02)
    raw = sql.read_source(plan.source)
    schema = infer_schema(raw, user=plan.user_schema)
    check_fit_for_release(raw, schema, sql.source_name(plan.source))
    options, plan = settle_model(options, plan, schema, len(raw))
    check_named_columns(plan, schema)
    check_memory(plan.model, schema, len(raw), options.model)
    digest = None if isinstance(plan.source, sql.SqlSource) else file_sha256(plan.source)  # hashed once
    budget, ledger_record = debit_ledger(options, plan, say, raw, digest)
    rng = np.random.default_rng(options.seed)  # OS entropy unless the user asked for a seed
    raw_train, raw_holdout = split(raw, plan.policy.holdout_share, rng)
    schema, budget, facts = schema_for_fit(raw_train, schema, plan, budget)
    train, holdout = (conform_rows(part, schema, facts is not None) for part in (raw_train, raw_holdout))
    say(f"fitting {options.model}", 0.1)
    started = time.perf_counter()
    plan.model.fit(train, schema, budget=budget, rng=rng)
    timings = {"fit_seconds": time.perf_counter() - started}
    synthetic, sampling = _synthesize(options, plan, schema, train, rng, say, avoid=_real_pii(plan, schema, raw))
    timings["sample_seconds"] = sampling.pop("seconds")
    say("validating", 0.72)
    metrics = run_checks(train, holdout, synthetic, schema, check_options_for(options, plan, schema))
    verdict = evaluate(plan.policy, metrics, private=plan.request is not None)
    manifest, internal = manifest_lib.build(
        options=options, schema=schema, policy=plan.policy, model=plan.model, verdict=verdict, metrics=metrics,
        input_info=_input_info(raw, plan, digest), split_info=_split_info(plan, train, holdout),
        timings=timings, sampling=sampling, ledger=ledger_record)
    if facts is not None:
        manifest["schema_facts"] = facts
        manifest["warnings"] = dp_warnings(facts, plan.model)
    say("writing release", 0.85)
    if not verdict.passed:
        block(options, manifest, train, synthetic, schema, verdict, internal)
    out = publish_with_table(options, manifest, train, synthetic, schema, plan.sink, plan.source, internal) \
        if plan.sink else publish(options, manifest, train, synthetic, schema, internal)
    say("done", 1.0)
    return ReleaseResult(out, verdict, manifest, synthetic)


def dp_warnings(facts: dict, model) -> list[str]:
    """What a DP release's steward should know it lost: facts measured on few rows, and the model's DP losses
    (values clipped by a DP range, categories too rare to release). Each is a DP or public figure."""
    return [*filter(None, [few_rows_warning(facts, model.rows_)]), *model.privacy_.get("warnings", [])]


def schema_for_fit(rows: pd.DataFrame, inferred: Schema, plan: Plan, budget) -> tuple[Schema, object, dict | None]:
    """A non-DP fit keeps the inferred schema. A DP fit may not: its schema facts are declared in the schema file
    or measured with DP on the rows it fits, paid from its budget (`privacy.facts`)."""
    if budget is None:
        return inferred, None, None
    schema, budget, facts = pay_for_facts(rows, plan.user_schema, budget)
    check_named_columns(plan, schema)
    return schema, budget, facts


def conform_rows(rows: pd.DataFrame, schema: Schema, private: bool) -> pd.DataFrame:
    """The rows as the models read them: text dates parsed, and for a DP schema numbers and booleans read
    value by value (a value that does not read as its column's kind is missing)."""
    return conform(conform_values(rows, schema) if private else rows, schema)


def debit_ledger(options: ReleaseOptions, plan: Plan, say, rows: pd.DataFrame | None = None,
                 file_digest: str | None = None):
    """Bad input costs nothing; from here on the debit is committed, so a failed or killed fit still counts.
    Without a declared identity (--source-id, a database table), the ledger knows the table by its `rows` (and,
    for debits of older versions, by the file's SHA-256 `file_digest`, computed here when not given)."""
    if plan.request is None:
        return None, None
    say("debiting the privacy ledger", 0.05)
    source = spending.ledger_source(plan.source, plan.ledger_source, rows, file_digest)
    return spending.charge(plan.request, source=source,
                           policy=plan.policy, model=options.model, ledger_url=options.ledger,
                           note=f"release to {options.out}")


def preflight(options: ReleaseOptions) -> Plan:
    """Every check that needs no data, before any work: bad options fail in a second, not after fitting."""
    from tabsynth.validate.constraints import load_constraints

    if options.fmt not in FORMATS:
        raise InputError(f"unknown format {options.fmt!r}; choose one of: {', '.join(FORMATS)}")
    if options.rows is not None and options.rows < 1:
        raise InputError(f"--rows must be a positive number, got {options.rows}")
    source, sink = check_source_and_sink(options)
    check_output(Path(options.out), source, options.overwrite)
    policy = load_policy(options.policy)
    model, private = preflight_model(options, policy)
    request = spending.plan(private, policy, options.epsilon, options.delta, options.model)
    ledger_source = None if request is None else spending.declared_identity(source, options.source_id, policy)
    return Plan(policy=policy, model=model, user_schema=None if options.schema is None else Schema.load(options.schema),
                constraints=tuple(load_constraints(options.constraints)) if options.constraints else (),
                request=request, target=options.target or policy.target,
                sensitive=tuple(options.sensitive) or policy.sensitive, source=source, sink=sink,
                ledger_source=ledger_source)


def preflight_model(options: ReleaseOptions, policy: Policy) -> tuple[object | None, bool]:
    """The model --model names, and whether it is DP. For --model auto no model yet (`settle_model` chooses it
    once the table is read), but whether it will be DP is known now, from the policy and the options alone."""
    if options.model != auto.AUTO:
        model = create_model(options.model, **options.model_params)
        return model, is_private(model)
    if options.model_params:
        raise InputError("--param needs --model NAME: --model auto sets its model's parameters itself")
    return None, auto.wants_dp(require_dp=policy.privacy.require_dp, rule_metrics=[r.metric for r in policy.rules],
                               epsilon_given=options.epsilon is not None or options.delta is not None,
                               engine=options.engine)


def settle_model(options: ReleaseOptions, plan: Plan, schema: Schema, rows: int) -> tuple[ReleaseOptions, Plan]:
    """--model auto, chosen by the policy and, for a model that is not DP, the table's size: the options then
    name the model, and the plan holds it. A DP choice is the same for every table."""
    if options.model != auto.AUTO:
        return with_choice(options, auto.named(options.model)), plan
    choice = auto.choose_model(dp=plan.request is not None, rows=rows, columns=len(schema.modelled()),
                               rule_metrics=[r.metric for r in plan.policy.rules], engine=options.engine)
    return with_choice(options, choice), replace(plan, model=create_model(choice.name, **choice.params))


def with_choice(options: ReleaseOptions, choice: auto.Choice) -> ReleaseOptions:
    params = options.model_params if choice.chosen_by == "user" else choice.params
    return replace(options, model=choice.name, model_params=params, model_choice=choice.record())


def check_source_and_sink(options: ReleaseOptions) -> tuple[Path | sql.SqlSource, sql_sink.SqlSink | None]:
    """The input file or table exists; the output table is free (or --replace) before anything is fitted."""
    source = sql.open_source(options.data, options.table, options.query)
    sink = sql_sink.parse_sink(options.out_table, options.out_url, source, options.replace)
    return source, sql_sink.check_sink(sink, source)


def check_output(out: Path, source, overwrite: bool) -> None:
    """--overwrite replaces an earlier release, never some other folder (such as the one holding the data)."""
    check_can_create(out, overwrite=overwrite)
    if not out.exists():
        return
    if isinstance(source, Path) and out.resolve() in [source.resolve(), *source.resolve().parents]:
        raise InputError(f"the input file is inside the output folder {out}; choose another --out")
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise InputError(f"{out} is not a tabsynth release folder (no manifest.json); refusing to replace it")


def check_fit_for_release(raw: pd.DataFrame, schema: Schema, name: str) -> None:
    """Tables too small to fit and keep a holdout, or with nothing to model, stop here with a clear line."""
    if len(raw) < MIN_ROWS:
        raise InputError(f"{name}: the table has {len(raw)} row{'s' if len(raw) != 1 else ''}; at least {MIN_ROWS} "
                         "are needed to fit a model and keep a holdout for the privacy checks")
    if not schema.modelled():
        raise InputError(f"{name}: no columns to model (every column is PII or an identifier); "
                         "mark some as numerical or categorical in the schema")


def check_named_columns(plan: Plan, schema: Schema) -> None:
    """The target and sensitive columns must be modelled columns of this table."""
    modelled = {c.name for c in schema.modelled()}
    named = ([("--target", plan.target)] if plan.target else []) + [("--sensitive", s) for s in plan.sensitive]
    problems = [f"{flag} {name!r} is not a modelled column of this table" for flag, name in named
                if name not in modelled]
    target_kind = schema[plan.target].kind if plan.target in modelled else None
    problems += target_metric_problems(plan.policy, plan.target, target_kind)
    if problems:
        raise InputError(*problems)


def _real_pii(plan: Plan, schema: Schema, raw: pd.DataFrame) -> frozenset[str]:
    """The real PII values (train and holdout) no fake may equal; none for a DP release, whose output may not
    depend on them."""
    if plan.request is not None:
        return frozenset()
    return pii.values_to_avoid([raw], [c.name for c in schema.columns if c.kind == "pii"])


def _synthesize(options, plan: Plan, schema: Schema, train: pd.DataFrame, rng, say,
                avoid: frozenset[str] = frozenset()) -> tuple[pd.DataFrame, dict]:
    """Rows meeting every schema fact and user constraint (bounded rejection), then keys and fake PII."""
    from tabsynth.sample.conditional import sample_valid

    private = plan.request is not None
    n = options.rows or (plan.model.rows_ if private else len(train))
    say(f"sampling {n:,} rows", 0.5)
    started = time.perf_counter()
    facts = output_schema(schema, private)
    modelled, rejected = sample_valid(plan.model, n, facts, list(plan.constraints), rng,
                                      real=None if private else train)
    synthetic = add_identifiers(modelled, facts, n, rng, avoid=avoid)
    info = {"rows": n, "rows_source": "--rows" if options.rows else ("noisy total" if private else "training rows"),
            "rejected_by_constraints": int(rejected), "seconds": time.perf_counter() - started}
    return synthetic, info


def output_schema(schema: Schema, private: bool) -> Schema:
    """What shapes a DP release's rows: declared facts only. Rejecting rows outside the private min/max, or
    blanking fake PII at the real column's missing share, would carry unpaid private statistics into the output."""
    return Schema.from_dict(schema.public()) if private else schema


def check_options_for(options, plan: Plan, schema: Schema) -> CheckOptions:
    private = plan.request is not None
    return CheckOptions(target=plan.target, sensitive=plan.sensitive, constraints=plan.constraints,
                        constraint_facts=output_schema(schema, private), learn_combinations=not private,
                        random_state=0 if options.seed is None else options.seed,
                        extra=privacy_metrics(plan.model))


def privacy_metrics(model) -> list[MetricResult]:
    """The ε and δ the model spent (NaN for a model that is not differentially private: a DP rule then fails)."""
    spent = getattr(model, "privacy_", None) if is_private(model) else None
    note = "" if spent else " (the model is not differentially private)"
    return [MetricResult(name, float(spent[key]) if spent else float("nan"), "min", text + note,
                         reads_private_rows=False)
            for name, key, text in (("dp_epsilon", "epsilon", "epsilon spent by the model"),
                                    ("dp_delta", "delta", "delta spent by the model"))]


def _input_info(raw: pd.DataFrame, plan: Plan, file_digest: str | None) -> dict:
    """All of it; a DP release's manifest keeps only the public part (no hash, no row count)."""
    return {**sql.input_info(plan.source, raw, file_digest), "rows": len(raw)}


def _split_info(plan: Plan, train: pd.DataFrame, holdout: pd.DataFrame) -> dict:
    return {"holdout_share": plan.policy.holdout_share, "method": "each row to the holdout independently, with "
            "probability holdout_share", "train_rows": len(train), "holdout_rows": len(holdout)}
