"""Distribution fidelity of a synthetic table: how closely its columns and column pairs follow the real table.

Total variation distances (`tabsynth.table.distances`): both tables are cut into the same bins, taken from the
real table: numbers and dates into 10 quantile bins, categories into their 20 most frequent values plus 'other';
missing is a bin of its own (0 = same distribution, 1 = disjoint). Beside them: Wasserstein distances of
numbers and dates, the difference between association matrices, and coverage of the real categories
and ranges (which catches mode collapse).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabsynth.metrics.result import MetricResult
from tabsynth.metrics.statistics import average_ranks, wasserstein_1d
from tabsynth.table.distances import column_pairs, column_tvds, mean_or_zero, numeric_values
from tabsynth.table.schema import Column, Schema

NUMERIC_KINDS = ("numerical", "datetime")
CATEGORY_KINDS = ("categorical", "boolean")
MAX_ASSOCIATION_ROWS = 50_000  # larger tables are subsampled for the association matrix
WORST_PAIRS = 5
COVERED_QUANTILES = (0.01, 0.99)


def column_distances(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> list[MetricResult]:
    """One-way TVD per modelled column, then their mean, then the mean two-way TVD over column pairs."""
    per_column, pair_values, total = column_tvds(real, synthetic, schema.modelled())
    results = [
        MetricResult(f"tvd:{name}", value, "min", f"total variation distance of column {name!r}")
        for name, value in per_column.items()
    ]
    results.append(MetricResult("mean_column_tvd", mean_or_zero(per_column.values()), "min",
                                "mean one-way total variation distance over modelled columns"))
    results.append(MetricResult("mean_pair_tvd", mean_or_zero(pair_values), "min",
                                "mean two-way total variation distance over pairs of modelled columns",
                                details={"pairs": len(pair_values), "pairs_in_table": total}))
    return results


def wasserstein_distances(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> list[MetricResult]:
    """Wasserstein distance per number and date column, in units of the real column's spread, then their mean."""
    per_column = {
        c.name: _scaled_wasserstein(numeric_values(real[c.name]), numeric_values(synthetic[c.name]))
        for c in schema.modelled() if c.kind in NUMERIC_KINDS
    }
    results = [
        MetricResult(f"wasserstein:{name}", value, "min",
                     f"Wasserstein distance of column {name!r}, in units of its real interquartile range")
        for name, value in per_column.items()
    ]
    results.append(MetricResult("mean_wasserstein", mean_or_zero(per_column.values()), "min",
                                "mean scaled Wasserstein distance over number and date columns"))
    return results


def _scaled_wasserstein(real: np.ndarray, synthetic: np.ndarray) -> float:
    real, synthetic = real[np.isfinite(real)], synthetic[np.isfinite(synthetic)]
    if not len(real) or not len(synthetic):
        return float("nan")
    # Centring first keeps the precision of large values such as dates in nanoseconds.
    center, scale = np.median(real), _spread(real)
    return wasserstein_1d((real - center) / scale, (synthetic - center) / scale)


def _spread(values: np.ndarray) -> float:
    """Interquartile range, else the range, else 1 (a constant column)."""
    low, high = np.quantile(values, [0.25, 0.75])
    for spread in (high - low, np.ptp(values)):
        if spread > 0:
            return float(spread)
    return 1.0


def association_matrix(frame: pd.DataFrame, schema: Schema, *, random_state: int = 0) -> pd.DataFrame:
    """Association between modelled columns, in a symmetric matrix with a unit diagonal.

    Numbers and dates: Spearman's rho; categories and booleans (missing as a category): bias-corrected
    Cramér's V; a number with a category: the correlation ratio eta. Rows with a missing number are left
    out of that number's pairs; a constant column has association 0. Pairs beyond `column_pairs`'s cap
    stay NaN; a table of more than MAX_ASSOCIATION_ROWS rows is subsampled with `random_state`.
    """
    columns = schema.modelled()
    rows = _association_rows(frame, random_state)
    encoded = {c.name: _encode(c, rows[c.name]) for c in columns}
    names = [c.name for c in columns]
    matrix = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(matrix, 1.0)
    position = {name: i for i, name in enumerate(names)}
    for a, b in column_pairs(names)[0]:
        matrix[position[a], position[b]] = matrix[position[b], position[a]] = _association(encoded[a], encoded[b])
    return pd.DataFrame(matrix, index=names, columns=names)


def _association_rows(frame: pd.DataFrame, random_state: int) -> pd.DataFrame:
    if len(frame) <= MAX_ASSOCIATION_ROWS:
        return frame
    return frame.sample(MAX_ASSOCIATION_ROWS, random_state=random_state)


def _encode(column: Column, values: pd.Series) -> np.ndarray:
    """Floats (NaN where missing) for numbers and dates; integer codes for categories, missing a code of its own."""
    if column.kind in NUMERIC_KINDS:
        return numeric_values(values)
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)


def _association(a: np.ndarray, b: np.ndarray) -> float:
    a_is_category, b_is_category = a.dtype.kind == "i", b.dtype.kind == "i"
    if a_is_category and b_is_category:
        return _cramers_v(a, b)
    if a_is_category:
        return _correlation_ratio(a, b)
    if b_is_category:
        return _correlation_ratio(b, a)
    return _spearman(a, b)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    present = np.isfinite(x) & np.isfinite(y)
    if present.sum() < 2:
        return float("nan")
    x, y = average_ranks(x[present]), average_ranks(y[present])
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V with Bergsma's (2013) bias correction, so that independent columns give about 0."""
    n = len(a)
    if n < 2:
        return float("nan")
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    rows, cols = a.max() + 1, b.max() + 1
    observed = np.bincount(a * cols + b, minlength=rows * cols).reshape(rows, cols)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    phi2 = ((observed - expected) ** 2 / expected).sum() / n
    phi2 = max(0.0, phi2 - (rows - 1) * (cols - 1) / (n - 1))
    smallest = min(rows - (rows - 1) ** 2 / (n - 1), cols - (cols - 1) ** 2 / (n - 1)) - 1
    return float(np.sqrt(phi2 / smallest)) if smallest > 0 else 0.0


def _correlation_ratio(codes: np.ndarray, values: np.ndarray) -> float:
    """Eta: the share of the variance of `values` explained by the category `codes`, square-rooted."""
    present = np.isfinite(values)
    if present.sum() < 2:
        return float("nan")
    _, codes = np.unique(codes[present], return_inverse=True)
    values = values[present]
    counts = np.bincount(codes)
    group_means = np.bincount(codes, weights=values) / counts
    total = ((values - values.mean()) ** 2).sum()
    between = (counts * (group_means - values.mean()) ** 2).sum()
    return float(np.sqrt(min(1.0, between / total))) if total > 0 else 0.0


def correlation_difference(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
                           random_state: int = 0) -> list[MetricResult]:
    """Mean absolute difference between the real and synthetic association matrices over column pairs."""
    real_matrix = association_matrix(real, schema, random_state=random_state)
    synthetic_matrix = association_matrix(synthetic, schema, random_state=random_state)
    pairs, total = column_pairs(list(real_matrix.index))
    gaps = pd.Series({(a, b): abs(real_matrix.loc[a, b] - synthetic_matrix.loc[a, b]) for a, b in pairs}, dtype=float)
    worst = gaps.sort_values(ascending=False, na_position="first").head(WORST_PAIRS)
    details = {
        "worst_pairs": [{"pair": [a, b], "real": finite_or_none(real_matrix.loc[a, b]),
                         "synthetic": finite_or_none(synthetic_matrix.loc[a, b]), "difference": finite_or_none(gap)}
                        for (a, b), gap in worst.items()],
        "pairs": len(pairs), "pairs_in_table": total,
        "rows_compared": {"real": min(len(real), MAX_ASSOCIATION_ROWS),
                          "synthetic": min(len(synthetic), MAX_ASSOCIATION_ROWS)},
        "subsampled": max(len(real), len(synthetic)) > MAX_ASSOCIATION_ROWS,
    }
    return [MetricResult("correlation_difference", mean_or_zero(gaps), "min",
                         "mean absolute difference between real and synthetic column associations "
                         "(Spearman, Cramér's V, correlation ratio)", details=details)]


def finite_or_none(value: float) -> float | None:
    """A plain float for JSON, None for NaN."""
    return float(value) if np.isfinite(value) else None


def coverage(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> list[MetricResult]:
    """Share of the real categories and of the real central ranges that the synthetic table reaches."""
    columns = schema.modelled()
    categories = {c.name: _category_share(real[c.name], synthetic[c.name]) for c in columns if c.kind in CATEGORY_KINDS}
    ranges = {c.name: _range_share(numeric_values(real[c.name]), numeric_values(synthetic[c.name]))
              for c in columns if c.kind in NUMERIC_KINDS}
    categories = {name: share for name, share in categories.items() if share is not None}
    ranges = {name: share for name, share in ranges.items() if share is not None}
    return [
        MetricResult("category_coverage", _mean_share(categories.values()), "max",
                     "mean share of each categorical column's real categories present in the synthetic table",
                     details={"per_column": categories}),
        MetricResult("range_coverage", _mean_share(ranges.values()), "max",
                     "mean share of each number or date column's real 1st-99th percentile range "
                     "covered by the synthetic minimum to maximum", details={"per_column": ranges}),
    ]


def _category_share(real: pd.Series, synthetic: pd.Series) -> float | None:
    categories = pd.Series(real.dropna().unique())
    if categories.empty:
        return None
    return float(categories.isin(synthetic.dropna().unique()).mean())


def _range_share(real: np.ndarray, synthetic: np.ndarray) -> float | None:
    real, synthetic = real[np.isfinite(real)], synthetic[np.isfinite(synthetic)]
    if not len(real):
        return None
    if not len(synthetic):
        return 0.0
    low, high = np.quantile(real, COVERED_QUANTILES)
    synthetic_low, synthetic_high = synthetic.min(), synthetic.max()
    if high == low:
        return float(synthetic_low <= low <= synthetic_high)
    return float(max(0.0, min(high, synthetic_high) - max(low, synthetic_low)) / (high - low))


def _mean_share(shares) -> float:
    """Mean share; 1 when there is nothing to cover."""
    shares = list(shares)
    return float(np.mean(shares)) if shares else 1.0
