"""The constraint metrics of a synthetic table: every rule of `tabsynth.rules.constraints` (the schema's facts,
the user's constraints, the date orders learnt from the real rows); the user's constraints checked with Great
Expectations (up to `MAX_GX_RULES`), the rest with pandas. Reports show synthetic values only, never a real one."""

from __future__ import annotations

import pandas as pd

from tabsynth.metrics.expectations import violations
from tabsynth.metrics.result import MetricResult
from tabsynth.rules.constraints import Constraint, rows_passing, table_rules, user_rules
from tabsynth.table.schema import Schema


def check_constraints(synthetic: pd.DataFrame, schema: Schema, constraints: list[Constraint],
                      real: pd.DataFrame | None = None) -> list[MetricResult]:
    """Validate the synthetic table (datetimes parsed, as the models give it): every rule, the user's constraints
    with GX (up to `MAX_GX_RULES` of them), the schema's facts and learnt orders with pandas."""
    user, table = user_rules(schema, constraints, real), table_rules(schema, real)
    share = float(rows_passing(synthetic, user + table).mean()) if len(synthetic) else 1.0
    return [violations(synthetic.reset_index(drop=True), user, table),
            MetricResult("constraint_valid_share", share, "max",
                         "share of synthetic rows meeting every row-level rule")]
