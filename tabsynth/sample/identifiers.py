"""Identifier columns of a synthetic table: keys regenerated unique, PII replaced by safe fakes."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.table.schema import Schema


def add_identifiers(modelled: pd.DataFrame, schema: Schema, n: int, rng: np.random.Generator,
                    avoid: Collection[str] = ()) -> pd.DataFrame:
    """Keys regenerated unique, PII replaced by fakes of the same kind (none equal to a value in `avoid`, the
    real PII values) or dropped; columns in table order."""
    columns = {}
    for column in schema.released():
        share = column.missing or 0.0  # None when the schema withholds it (DP model folders)
        if column.kind == "id":
            numeric = pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(column.dtype))
            keys = pii.unique_keys(n, rng, integer=numeric)
            columns[column.name] = keys.astype(column.dtype) if numeric else _with_missing(keys, share, rng)
        elif column.kind == "pii":
            columns[column.name] = _with_missing(pii.fake_values(column.pii, n, rng, avoid=avoid), share, rng)
        else:
            columns[column.name] = modelled[column.name].reset_index(drop=True)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _with_missing(values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Blank out about `share` of the values, as the real column is blank."""
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out
