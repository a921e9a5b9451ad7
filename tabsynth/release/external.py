"""`tabsynth validate`: gate a synthetic table made elsewhere against the real one, under a policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tabsynth import __version__
from tabsynth.errors import SchemaError
from tabsynth.infer import conform, infer_schema
from tabsynth.io.files import check_input_path, file_sha256, read_table
from tabsynth.release import manifest as manifest_lib
from tabsynth.release.gate import Verdict, evaluate
from tabsynth.release.policy import load_policy
from tabsynth.release.publish import raise_blocked
from tabsynth.release.report import write_report
from tabsynth.schema import Schema
from tabsynth.validate.checks import CheckOptions, run_checks
from tabsynth.validate.result import MetricResult


@dataclass
class ValidateOptions:
    real: Path
    synthetic: Path
    policy: str = "default"
    holdout: Path | None = None
    schema: Path | None = None
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    constraints: Path | None = None
    report: Path | None = None


def validate_tables(options: ValidateOptions) -> tuple[Verdict, dict]:
    """Run the policy's checks; raise ReleaseBlocked (exit 3) listing every failing rule. Writes no data."""
    from tabsynth.validate.constraints import load_constraints

    policy = load_policy(options.policy)
    constraints = load_constraints(options.constraints) if options.constraints else []
    for path in (options.real, options.synthetic, options.holdout):
        if path is not None:
            check_input_path(path)
    raw = read_table(options.real)
    schema = infer_schema(raw, user=Schema.load(options.schema) if options.schema else None)
    real = conform(raw, schema)
    synthetic = _modelled(read_table(options.synthetic), schema, "synthetic")
    holdout = _modelled(read_table(options.holdout), schema, "holdout") if options.holdout else real.iloc[:0]
    unknown = MetricResult("dp_epsilon", float("nan"), "min", "epsilon is unknown for a table made elsewhere",
                           reads_private_rows=False)
    metrics = run_checks(real, holdout, synthetic, schema, CheckOptions(
        target=options.target or policy.target, sensitive=tuple(options.sensitive) or policy.sensitive,
        constraints=tuple(constraints), extra=[unknown]))
    verdict = evaluate(policy, metrics)
    manifest = _manifest(options, policy, schema, verdict, metrics, len(holdout))
    if options.report:
        write_report(Path(options.report), manifest, real, synthetic, schema)
    if not verdict.passed:
        raise_blocked(policy.name, verdict, options.report, what="synthetic table")
    return verdict, manifest


def _modelled(frame: pd.DataFrame, schema: Schema, what: str) -> pd.DataFrame:
    """The modelled columns of another table, parsed like the real ones; missing columns are one error each."""
    missing = [c.name for c in schema.modelled() if c.name not in frame.columns]
    if missing:
        raise SchemaError(*[f"the {what} table has no column {name!r}" for name in missing])
    modelled = Schema(tuple(schema.modelled()))
    return conform(frame[modelled.names], modelled)


def _manifest(options: ValidateOptions, policy, schema: Schema, verdict: Verdict, metrics, holdout_rows) -> dict:
    return {
        "tabsynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "released": verdict.passed,
        "input": {"path": str(options.real), "sha256": file_sha256(options.real),
                  "synthetic": str(options.synthetic), "synthetic_sha256": file_sha256(options.synthetic)},
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
