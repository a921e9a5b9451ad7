"""pii_leak: real values of the PII columns found anywhere in the synthetic table."""

from __future__ import annotations

import pandas as pd

from tabsynth.metrics.result import MetricResult
from tabsynth.pii.compare import comparable, is_text, values_to_avoid
from tabsynth.table.schema import Schema

# In a column that is not PII, a value that 5 or more real rows of that same column hold is one of its
# categories ('White' in a race column, 'Jordan' as a country), not a copied name.
CATEGORY_MIN_ROWS = 5
MIN_LENGTH = 3  # shorter values ('Al', 'Li') match state codes and abbreviations by chance

DESCRIPTION = ("synthetic values equal (case and spacing aside) to a real value of a PII column, in train or holdout: "
               "counted in the PII columns, and in every other text column where the value is not one of that "
               f"column's real categories (held by {CATEGORY_MIN_ROWS}+ real rows)")


def pii_leak(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> list[MetricResult]:
    """How many synthetic cells hold a real PII value; the details name the columns (never the values)."""
    pii_names = [c.name for c in schema.columns if c.kind == "pii"]
    real_values = values_to_avoid((train, holdout), pii_names)
    kinds = {c.name: c.kind for c in schema.columns}
    in_pii, elsewhere = {}, {}
    for name in synthetic.columns:
        kind = kinds.get(name)
        if kind == "pii":
            in_pii[name] = int(comparable(synthetic[name]).isin(real_values).sum())
        elif kind != "id" and real_values and is_text(synthetic[name].dtype):
            found = _outside_categories(synthetic[name], [f[name] for f in (train, holdout) if name in f], real_values)
            if found:
                elsewhere[name] = found
    absent = sorted(set(pii_names) - set(in_pii))
    details = {"pii_columns": in_pii, "other_columns": elsewhere, "pii_columns_absent_from_synthetic": absent}
    return [MetricResult("pii_leak", float(sum(in_pii.values()) + sum(elsewhere.values())), "min", DESCRIPTION,
                         details=details)]


def _outside_categories(values: pd.Series, real_columns: list[pd.Series], real_values: frozenset[str]) -> int:
    spelt = comparable(values)
    counts = pd.concat([comparable(column) for column in real_columns]).value_counts() if real_columns \
        else pd.Series(dtype=int)
    categories = set(counts.index[counts >= CATEGORY_MIN_ROWS])
    leaked = spelt.isin(real_values) & ~spelt.isin(categories) & (spelt.str.len() >= MIN_LENGTH)
    return int(leaked.sum())


def leak_lines(metric: MetricResult) -> list[str]:
    """One line per column holding real PII values, for a reviewer."""
    lines = [f"PII column {name!r}: {_values(count)} a real value of the column"
             for name, count in metric.details.get("pii_columns", {}).items() if count]
    return lines + [f"column {name!r}: {_values(count)} a real value of a PII column"
                    for name, count in metric.details.get("other_columns", {}).items()]


def _values(count: int) -> str:
    return f"{count} synthetic value equals" if count == 1 else f"{count} synthetic values equal"
