"""`release`: preflight → (ledger debit) → read → schema → split → fit → sample → validate → gate → publish."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.io import sql
from tabsynth.io.files import file_sha256
from tabsynth.metrics.checks import run_checks
from tabsynth.models.memory import check_memory
from tabsynth.publish import manifest as manifest_lib
from tabsynth.publish.folder import block, publish, publish_with_table
from tabsynth.publish.gate import evaluate
from tabsynth.run import auto
from tabsynth.run.by_person import person_key, release_by_person
from tabsynth.run.options import Progress, ReleaseOptions, ReleaseResult
from tabsynth.run.plan import (
    Plan,
    check_named_columns,
    check_options_for,
    conform_rows,
    debit_ledger,
    dp_warnings,
    output_schema,
    preflight,
    read_and_infer,
    real_pii,
    schema_for_fit,
    settle_model,
)
from tabsynth.sample.identifiers import add_identifiers
from tabsynth.table.schema import Schema
from tabsynth.table.split import split


def release(options: ReleaseOptions, progress: Progress | None = None) -> ReleaseResult:
    """Run every stage; publish the folder only if the gate passes, else raise ReleaseBlocked. The engine is
    chosen here: in memory, or out of core through DuckDB (`options.engine`)."""
    if options.engine == "duckdb":
        from tabsynth.run.out_of_core import release_out_of_core  # imports DuckDB

        return release_out_of_core(options, progress)
    if options.engine != "memory":
        raise InputError(f"unknown engine {options.engine!r}; choose memory or duckdb")
    return _release_in_memory(options, progress or (lambda *_: None))


def _release_in_memory(options: ReleaseOptions, say: Progress) -> ReleaseResult:
    plan = preflight(options)
    raw, schema = read_and_infer(plan, say)
    repeated = person_key(raw, schema, plan.user_schema)
    if repeated is not None:  # DP too: the dataset release is then per-person DP
        return release_by_person(options, raw, repeated, say, private=plan.request is not None)
    options, plan = settle_model(options, plan, schema, len(raw))
    check_named_columns(plan, schema)
    check_memory(plan.model, schema, len(raw), options.model)
    digest = file_sha256(plan.source) if isinstance(plan.source, Path) else None  # a file's, hashed once
    budget, ledger_record = debit_ledger(options, plan, say, raw, digest)
    rng = np.random.default_rng(options.seed)  # OS entropy unless the user asked for a seed
    raw_train, raw_holdout = split(raw, plan.policy.holdout_share, rng)
    schema, budget, facts = schema_for_fit(raw_train, schema, plan, budget)
    train, holdout = (conform_rows(part, schema, facts is not None) for part in (raw_train, raw_holdout))
    say(f"fitting {options.model}", 0.1)
    started = time.perf_counter()
    plan.model.fit(train, schema, budget=budget, rng=rng)
    timings = {"fit_seconds": time.perf_counter() - started}
    synthetic, sampling = _synthesize(options, plan, schema, train, rng, say, avoid=real_pii(plan, schema, raw))
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
        block(options, manifest, train, synthetic, schema, verdict, internal,
              hints=auto.blocked_hints([o.metric for o in verdict.failures()], options.model))
    out = publish_with_table(options, manifest, train, synthetic, schema, plan.sink, plan.source, internal) \
        if plan.sink else publish(options, manifest, train, synthetic, schema, internal)
    say("done", 1.0)
    return ReleaseResult(out, verdict, manifest, synthetic)


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


def _input_info(raw: pd.DataFrame, plan: Plan, file_digest: str | None) -> dict:
    """All of it; a DP release's manifest keeps only the public part (no hash, no row count)."""
    return {**sql.input_info(plan.source, raw, file_digest), "rows": len(raw)}


def _split_info(plan: Plan, train: pd.DataFrame, holdout: pd.DataFrame) -> dict:
    return {"holdout_share": plan.policy.holdout_share, "method": "each row to the holdout independently, with "
            "probability holdout_share", "train_rows": len(train), "holdout_rows": len(holdout)}
