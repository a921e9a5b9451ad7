"""Privacy-risk checks against the training rows, with the holdout as the chance baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabsynth.schema import Schema
from tabsynth.validate.result import MetricResult


def row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hashable key per row; missing values compare equal to each other, dtypes do not matter."""
    parts = [frame[c].astype(object).where(frame[c].notna(), "\x00NA").astype(str) for c in columns]
    if not parts:
        return pd.Series([""] * len(frame), index=frame.index)
    return pd.Series(map("\x1f".join, zip(*parts, strict=True)), index=frame.index)


def copy_rate(train: pd.DataFrame, other: pd.DataFrame, columns: list[str]) -> float:
    """Share of `other`'s rows that are identical to some training row on `columns`."""
    if len(other) == 0:
        return float("nan")
    train_keys = set(row_keys(train, columns))
    return float(np.mean([key in train_keys for key in row_keys(other, columns)]))


def exact_copies(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema
                 ) -> list[MetricResult]:
    """Synthetic rows copied from training rows, beside the rate at which real holdout rows repeat them."""
    columns = [c.name for c in schema.modelled()]
    synthetic_rate = copy_rate(train, synthetic, columns)
    holdout_rate = copy_rate(train, holdout, columns) if len(holdout) else 0.0
    excess = max(0.0, synthetic_rate - holdout_rate) if np.isfinite(synthetic_rate) else float("nan")
    compared = {"columns_compared": len(columns)}
    return [
        MetricResult("exact_copy_rate", synthetic_rate, "min",
                     "share of synthetic rows identical to a training row", details=compared),
        MetricResult("holdout_copy_rate", holdout_rate, "min",
                     "share of real holdout rows identical to a training row (the rate expected by chance)"),
        MetricResult("exact_copy_excess", excess, "min",
                     "exact-copy rate beyond the chance rate seen on the holdout"),
    ]
