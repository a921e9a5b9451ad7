"""The plan every workflow shares (release in memory or out of core, fit, Spark): options checked before any
work, the model settled, the ledger debited before a private row is read, and the schema a fit may use."""

from __future__ import annotations

from dataclasses import dataclass, replace
from inspect import signature
from pathlib import Path

import pandas as pd

from tabsynth import pii
from tabsynth.errors import InputError
from tabsynth.io import sql, sql_sink
from tabsynth.io.atomic import check_can_create
from tabsynth.io.files import FORMATS
from tabsynth.io.frames import FrameSource
from tabsynth.metrics.checks import CheckOptions
from tabsynth.metrics.result import MetricResult
from tabsynth.models.base import create_model, is_private, model_class
from tabsynth.privacy import spending
from tabsynth.privacy.facts import conform_values, few_rows_warning, pay_for_facts
from tabsynth.publish.policy import Policy, load_policy, target_metric_problems
from tabsynth.run import auto
from tabsynth.run.options import FitOptions, Progress, ReleaseOptions
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema

MIN_ROWS = 10
Options = ReleaseOptions | FitOptions


@dataclass(frozen=True)
class Plan:
    """Everything decided before the data is read."""

    policy: Policy
    model: object
    user_schema: Schema | None
    request: spending.Request | None
    source: Path | sql.SqlSource | FrameSource
    constraints: tuple = ()
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    sink: sql_sink.SqlSink | None = None
    ledger_source: str | None = None


def preflight(options: ReleaseOptions) -> Plan:
    """Every check of a release that needs no data, before any work: bad options fail in a second, not after
    fitting."""
    from tabsynth.rules.constraints import load_constraints

    if options.fmt not in FORMATS:
        raise InputError(f"unknown format {options.fmt!r}; choose one of: {', '.join(FORMATS)}")
    if options.rows is not None and options.rows < 1:
        raise InputError(f"--rows must be a positive number, got {options.rows}")
    source, sink = check_source_and_sink(options)
    check_output(Path(options.out), source, options.overwrite)
    plan = plan_for(options, source)
    return replace(plan, constraints=tuple(load_constraints(options.constraints)) if options.constraints else (),
                   sensitive=tuple(options.sensitive) or plan.policy.sensitive, sink=sink)


def plan_for(options: Options, source) -> Plan:
    """What release and fit decide alike before reading a row: the policy, the model (or that auto will choose
    one, DP or not), the (ε, δ) asked for within the policy's limits, the ledger identity, the user's schema, and
    the target (--target, else the policy's)."""
    policy = load_policy(options.policy)
    target = options.target or policy.target
    model, private = preflight_model(options, policy, target)
    request = spending.plan(private, policy, options.epsilon, options.delta, options.model)
    ledger_source = None if request is None else spending.declared_identity(source, options.source_id, policy)
    return Plan(policy=policy, model=model, user_schema=None if options.schema is None else Schema.load(options.schema),
                request=request, source=source, ledger_source=ledger_source, target=target)


def preflight_model(options: Options, policy: Policy, target: str | None = None) -> tuple[object | None, bool]:
    """The model --model names, and whether it is DP. For --model auto no model yet (`settle_model` chooses it
    once the table is read), but whether it will be DP is known now, from the policy and the options alone."""
    if options.model != auto.AUTO:
        model = create_model(options.model, **params_with_target(options.model, options.model_params, target))
        return model, is_private(model)
    if options.model_params:
        raise InputError("--param needs --model NAME: --model auto sets its model's parameters itself")
    return None, auto.wants_dp(require_dp=policy.privacy.require_dp, rule_metrics=[r.metric for r in policy.rules],
                               epsilon_given=options.epsilon is not None or options.delta is not None,
                               engine=options.engine)


def settle_model(options: Options, plan: Plan, schema: Schema, rows: int) -> tuple[Options, Plan]:
    """--model auto, chosen by the policy and, for a model that is not DP, the table's size: the options then
    name the model, and the plan holds it. A DP choice is the same for every table."""
    if options.model != auto.AUTO:
        return with_choice(options, auto.named(options.model)), plan
    choice = auto.choose_model(dp=plan.request is not None, rows=rows, columns=len(schema.modelled()),
                               rule_metrics=[r.metric for r in plan.policy.rules], engine=options.engine)
    params = params_with_target(choice.name, choice.params, plan.target)
    return with_choice(options, choice), replace(plan, model=create_model(choice.name, **params))


def params_with_target(name: str, params: dict, target: str | None) -> dict:
    """A model with a `target` parameter (dp-marginal, dp-argn) favours the plan's target column, unless
    --param target= set it (`target=null`: no target). The name is the user's (public): nothing private decides."""
    if target is None or "target" in params or "target" not in signature(model_class(name)).parameters:
        return params
    return {**params, "target": target}


def with_choice(options: Options, choice: auto.Choice) -> Options:
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


def inspect_source(data, user: Schema | None = None, table: str | None = None,
                   query: str | None = None) -> Schema:
    """`inspect`: the schema inferred for a file, a database table or a DataFrame, over the user's."""
    return infer_schema(sql.read_source(sql.open_source(data, table, query)), user=user)


def read_and_infer(plan: Plan, say: Progress) -> tuple[pd.DataFrame, Schema]:
    """The private rows, and the schema inferred from them over the user's (for a DP fit, `schema_for_fit`
    replaces it before the fit sees it)."""
    say("reading table", 0.02)
    raw = sql.read_source(plan.source)
    schema = infer_schema(raw, user=plan.user_schema)
    check_fit_for_release(raw, schema, sql.source_name(plan.source))
    return raw, schema


def real_pii(plan: Plan, schema: Schema, raw: pd.DataFrame) -> frozenset[str]:
    """The real PII values (train and holdout) no fake may equal; none for a DP release, whose output may not
    depend on them."""
    if plan.request is not None:
        return frozenset()
    return pii.values_to_avoid([raw], [c.name for c in schema.columns if c.kind == "pii"])


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


def debit_ledger(options: Options, plan: Plan, say, rows: pd.DataFrame | None = None,
                 file_digest: str | None = None, note: str = "release to"):
    """Bad input costs nothing; from here on the debit is committed, so a failed or killed fit still counts.
    Without a declared identity (--source-id, a database table), the ledger knows the table by its `rows` (and,
    for debits of older versions, by the file's SHA-256 `file_digest`, computed here when not given)."""
    if plan.request is None:
        return None, None
    say("debiting the privacy ledger", 0.05)
    source = spending.ledger_source(plan.source, plan.ledger_source, rows, file_digest)
    return spending.charge(plan.request, source=source,
                           policy=plan.policy, model=options.model, ledger_url=options.ledger,
                           note=f"{note} {options.out}")


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


def dp_warnings(facts: dict, model) -> list[str]:
    """What a DP release's steward should know it lost: facts measured on few rows, and the model's DP losses
    (values clipped by a DP range, categories too rare to release). Each is a DP or public figure."""
    return [*filter(None, [few_rows_warning(facts, model.rows_)]), *model.privacy_.get("warnings", [])]
