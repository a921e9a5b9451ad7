"""The stages shared by `release`, `fit` and `sample`: the train/holdout split, and identifier columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.schema import Schema


def split(table: pd.DataFrame, holdout_share: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random train/holdout split; the holdout never trains and is the chance baseline for risk checks."""
    order = rng.permutation(len(table))
    n_holdout = int(round(len(table) * holdout_share)) if len(table) >= 2 else 0
    n_holdout = min(n_holdout, len(table) - 1)
    holdout = table.iloc[np.sort(order[:n_holdout])].reset_index(drop=True)
    train = table.iloc[np.sort(order[n_holdout:])].reset_index(drop=True)
    return train, holdout


def add_identifiers(modelled: pd.DataFrame, schema: Schema, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Keys regenerated unique, PII replaced by fakes of the same kind or dropped; columns in table order."""
    columns = {}
    for column in schema.released():
        share = column.missing or 0.0  # None when the schema withholds it (DP model folders)
        if column.kind == "id":
            numeric = pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(column.dtype))
            keys = pii.unique_keys(n, rng, integer=numeric)
            columns[column.name] = keys.astype(column.dtype) if numeric else _with_missing(keys, share, rng)
        elif column.kind == "pii":
            columns[column.name] = _with_missing(pii.fake_values(column.pii, n, rng), share, rng)
        else:
            columns[column.name] = modelled[column.name].reset_index(drop=True)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _with_missing(values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Blank out about `share` of the values, as the real column is blank."""
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out
