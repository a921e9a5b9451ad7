"""The constraint metrics of a synthetic table: every rule of `tabsynth.rules.constraints` (the schema's facts,
the user's constraints, the date orders learnt from the real rows), checked with Great Expectations up to
`MAX_GX_RULES` rules and with pandas past that. Reports show synthetic values only, never a real one."""

from __future__ import annotations

import pandas as pd

from tabsynth.metrics.expectations import violations
from tabsynth.metrics.result import MetricResult
from tabsynth.rules.constraints import Constraint, compile_rules, rows_passing
from tabsynth.table.schema import Schema


def check_constraints(synthetic: pd.DataFrame, schema: Schema, constraints: list[Constraint],
                      real: pd.DataFrame | None = None) -> list[MetricResult]:
    """Validate the synthetic table (datetimes parsed, as the models give it): every rule, with GX up to
    `MAX_GX_RULES` of them (user constraints first), with pandas past that."""
    rules = compile_rules(schema, constraints, real)
    share = float(rows_passing(synthetic, rules).mean()) if len(synthetic) else 1.0
    return [violations(synthetic.reset_index(drop=True), rules),
            MetricResult("constraint_valid_share", share, "max",
                         "share of synthetic rows meeting every row-level rule")]
