"""How far apart two tables are, column by column and pair by pair: total variation distances between their
binned values, on bins learnt from the first table.

Numbers and dates are cut into 10 quantile bins, categories into their 20 most frequent values
plus 'other'; missing is a bin of its own (0 = same distribution, 1 = disjoint). `tabsynth.metrics.fidelity`
reports these as metrics; a model's early stopping scores its epochs with `mean_tvd`.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from tabsynth.table.infer import utc_nanoseconds
from tabsynth.table.schema import Column

NUMERIC_BINS = 10
TOP_CATEGORIES = 20
MAX_PAIRS = 1_000  # wide tables: the two-way mean is estimated on this many column pairs
MISSING, OTHER = -1, -2


def bin_codes(column: Column, real: pd.Series, synthetic: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer bin codes for both columns, with bins learnt from the real column."""
    if column.kind == "numerical" and not column.discrete or column.kind == "datetime":
        real_num, synth_num = numeric_values(real), numeric_values(synthetic)
        present = real_num[~np.isnan(real_num)]
        edges = np.unique(np.quantile(present, np.linspace(0, 1, NUMERIC_BINS + 1))[1:-1]) if len(present) else []
        return _digitize(real_num, edges), _digitize(synth_num, edges)
    top = real.value_counts().index[:TOP_CATEGORIES]
    lookup = {value: code for code, value in enumerate(top)}
    return _category_codes(real, lookup), _category_codes(synthetic, lookup)


def numeric_values(values: pd.Series) -> np.ndarray:
    """Numbers as floats, datetimes as UTC nanoseconds; NaN where missing or not a number."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return utc_nanoseconds(values)
    return pd.to_numeric(values, errors="coerce").to_numpy(float)


def _digitize(values: np.ndarray, edges) -> np.ndarray:
    codes = np.digitize(values, edges)
    codes[np.isnan(values)] = MISSING
    return codes


def _category_codes(values: pd.Series, lookup: dict) -> np.ndarray:
    codes = values.map(lookup).astype(float).fillna(OTHER).to_numpy(np.int64)
    codes[values.isna().to_numpy()] = MISSING
    return codes


def tvd(real_codes: np.ndarray, synth_codes: np.ndarray) -> float:
    """Total variation distance between the distributions of two integer code arrays."""
    values = np.unique(np.concatenate([real_codes, synth_codes]))
    real_p = np.bincount(np.searchsorted(values, real_codes), minlength=len(values)) / max(len(real_codes), 1)
    synth_p = np.bincount(np.searchsorted(values, synth_codes), minlength=len(values)) / max(len(synth_codes), 1)
    return float(0.5 * np.abs(real_p - synth_p).sum())


def binned_tables(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column]) -> tuple[dict, dict]:
    real_codes, synth_codes = {}, {}
    for column in columns:
        real_codes[column.name], synth_codes[column.name] = bin_codes(column, real[column.name], synthetic[column.name])
    return real_codes, synth_codes


def column_tvds(real: pd.DataFrame, synthetic: pd.DataFrame,
                columns: list[Column]) -> tuple[dict[str, float], list[float], int]:
    """The TVD of each column (by name), of each pair of columns that `column_pairs` picks, and the number of
    pairs in the table."""
    real_codes, synth_codes = binned_tables(real, synthetic, columns)
    per_column = {c.name: tvd(real_codes[c.name], synth_codes[c.name]) for c in columns}
    pairs, total = column_pairs(list(per_column))
    return per_column, [pair_tvd(real_codes, synth_codes, a, b) for a, b in pairs], total


def mean_tvd(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column]) -> float:
    """The mean one-way TVD plus the mean two-way TVD of the columns: one score, 0 for tables alike."""
    per_column, pairs, _ = column_tvds(real, synthetic, columns)
    return mean_or_zero(per_column.values()) + mean_or_zero(pairs)


def column_pairs(names: list[str]) -> tuple[list[tuple[str, str]], int]:
    """Every pair of columns, or MAX_PAIRS of them drawn evenly when there are more."""
    pairs = list(combinations(names, 2))
    if len(pairs) <= MAX_PAIRS:
        return pairs, len(pairs)
    # A fixed stride, not a random draw: the choice depends only on the column count, never on the data.
    picks = np.linspace(0, len(pairs) - 1, MAX_PAIRS).round().astype(int)
    return [pairs[i] for i in picks], len(pairs)


def pair_tvd(real_codes: dict, synth_codes: dict, a: str, b: str) -> float:
    """TVD of the joint codes a * width + b, where width exceeds every code of column b."""
    width = int(max(real_codes[b].max(initial=0), synth_codes[b].max(initial=0))) - OTHER + 1
    real = (real_codes[a] - OTHER) * width + (real_codes[b] - OTHER)
    synth = (synth_codes[a] - OTHER) * width + (synth_codes[b] - OTHER)
    return tvd(real, synth)


def mean_or_zero(values) -> float:
    """The mean of the values, 0.0 for none."""
    values = list(values)
    return float(np.mean(values)) if values else 0.0
