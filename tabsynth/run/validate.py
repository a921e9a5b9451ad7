"""`validate`: gate a synthetic table made elsewhere against the real one, under a policy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tabsynth._version import __version__
from tabsynth.errors import ReleaseBlocked, SchemaError
from tabsynth.io.files import check_input_path, file_sha256, read_table
from tabsynth.io.frames import FrameSource, check_frame, read_frame
from tabsynth.io.sql import frame_sha256
from tabsynth.metrics.checks import CheckOptions, run_checks
from tabsynth.metrics.result import MetricResult
from tabsynth.publish import manifest as manifest_lib
from tabsynth.publish.findings import failure_items as found_by
from tabsynth.publish.gate import Verdict, evaluate
from tabsynth.publish.policy import load_policy
from tabsynth.publish.report import write_report
from tabsynth.run.options import ValidateOptions
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema


def validate_tables(options: ValidateOptions, *, raise_blocked: bool = True) -> tuple[Verdict, dict]:
    """Run the policy's checks; unless told not to, raise ReleaseBlocked (exit 3) naming every failing rule,
    constraint and column holding real PII. Writes no data (but the report, if asked for)."""
    from tabsynth.rules.constraints import load_constraints

    policy = load_policy(options.policy)
    constraints = load_constraints(options.constraints) if options.constraints else []
    for data in (options.real, options.synthetic, options.holdout):
        if data is not None and not isinstance(data, pd.DataFrame):
            check_input_path(data)
    raw = _read(options.real, "real")
    schema = infer_schema(raw, user=Schema.load(options.schema) if options.schema else None)
    real = conform(raw, schema)
    given = _read(options.synthetic, "synthetic")
    synthetic = _as_released(given, schema, "synthetic")
    holdout = (real.iloc[:0] if options.holdout is None
               else _as_released(_read(options.holdout, "holdout"), schema, "holdout"))
    unknown = MetricResult("dp_epsilon", float("nan"), "min", "epsilon is unknown for a table made elsewhere",
                           reads_private_rows=False)
    metrics = run_checks(real, holdout, synthetic, schema, CheckOptions(
        target=options.target or policy.target, sensitive=tuple(options.sensitive) or policy.sensitive,
        constraints=tuple(constraints), constraint_facts=_present(schema, synthetic), extra=[unknown]))
    verdict = evaluate(policy, metrics)
    manifest = _manifest(options, policy, schema, verdict, metrics, len(holdout))
    manifest["checked"] = _what_was_checked(schema, synthetic, given)
    if options.report:
        write_report(Path(options.report), manifest, real, synthetic, schema)
    if raise_blocked and not verdict.passed:
        _raise_blocked(policy.name, verdict, metrics, options.report)
    return verdict, manifest


def _read(data, what: str) -> pd.DataFrame:
    """A file, or a DataFrame given to the Python API (checked and copied as a file is read)."""
    if isinstance(data, pd.DataFrame):
        return read_frame(check_frame(FrameSource(data, f"the {what} DataFrame")))
    return read_table(data)


def _name(data) -> str:
    return "a pandas DataFrame" if isinstance(data, pd.DataFrame) else str(data)


def _digest(data) -> str:
    return frame_sha256(read_frame(FrameSource(data))) if isinstance(data, pd.DataFrame) else file_sha256(data)


def _as_released(frame: pd.DataFrame, schema: Schema, what: str) -> pd.DataFrame:
    """The schema's columns of another table, modelled ones parsed like the real ones. A missing modelled column
    is one error each; PII and key columns may be absent (dropped), and are then not checked."""
    missing = [c.name for c in schema.modelled() if c.name not in frame.columns]
    if missing:
        raise SchemaError(*[f"the {what} table has no column {name!r}" for name in missing])
    present = _present(schema, frame)
    return conform(frame[present.names], present)


def _present(schema: Schema, frame: pd.DataFrame) -> Schema:
    """The schema's columns the table has, in the schema's order."""
    return Schema(tuple(c for c in schema.columns if c.name in frame.columns))


def _what_was_checked(schema: Schema, synthetic: pd.DataFrame, given: pd.DataFrame) -> dict:
    """What `validate` verified about the columns it does not model: nothing about how they were made."""
    pii_columns = [c.name for c in schema.columns if c.kind == "pii"]
    return {
        "pii_columns": {name: ("compared with every real value of the PII columns (rule pii_leak)"
                               if name in synthetic.columns else "absent from the synthetic table")
                        for name in pii_columns},
        "key_columns": [c.name for c in schema.columns if c.kind == "id" and c.name in synthetic.columns],
        "key_note": "present in the synthetic table; made elsewhere, so whether they relate to the real keys was "
                    "not checked",
        "not_in_real_table": [str(name) for name in given.columns if name not in schema.names],
        "note": "the synthetic table was made elsewhere: how its PII and keys were produced is not known; "
                "only what the metrics and rules record was checked",
    }


def _raise_blocked(policy_name: str, verdict: Verdict, metrics: list[MetricResult], report: Path | None):
    by_name = {m.name: m for m in metrics}
    lines = []
    for outcome in verdict.failures():
        lines.append(f"synthetic table blocked by policy {policy_name!r}: {outcome.line()}")
        lines += [f"  {item}" for item in failure_items(by_name.get(outcome.metric))]
    where = f"; see the report at {report}" if report else ""
    raise ReleaseBlocked(*lines, f"the synthetic table does not pass; nothing was released{where}", report_path=report)


def failure_items(metric: MetricResult | None) -> list[str]:
    """What a failed metric found, one line per item: each failed constraint, each column holding real PII."""
    return [] if metric is None else found_by(metric.name, metric.details)


def _manifest(options: ValidateOptions, policy, schema: Schema, verdict: Verdict, metrics, holdout_rows) -> dict:
    return {
        "kind": "validation",  # the report is titled a validation report; nothing is released
        "tabsynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "released": verdict.passed,
        "input": {"path": _name(options.real), "sha256": _digest(options.real),
                  "synthetic": _name(options.synthetic), "synthetic_sha256": _digest(options.synthetic)},
        "split": {"holdout_rows": holdout_rows,
                  "note": "no holdout given: checks that need real rows the generator never saw cannot run"
                  if not holdout_rows else "holdout given by the user"},
        "model": {"name": "made elsewhere", "differentially_private": None},
        "policy": {"name": policy.name, "description": policy.description.strip()},
        "gate": verdict.to_dict(),
        "metrics": [m.to_dict() for m in metrics],
        "schema": schema.public(),
        "versions": manifest_lib.versions(),
    }
