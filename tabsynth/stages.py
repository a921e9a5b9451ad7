"""The stages shared by `release`, `fit` and `sample`: the train/holdout split, and identifier columns."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.errors import InputError
from tabsynth.schema import Schema


def split(table: pd.DataFrame, holdout_share: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each row goes to the holdout with probability `holdout_share`, independently of every other row (as the
    DuckDB engine's hash split does). Adding or removing one row thus adds or removes at most that row from the
    training set, the add/remove neighbouring relation every DP model's accounting assumes; a fixed holdout size
    would turn some additions into a replacement of one training row. The holdout never trains and is the chance
    baseline for the risk checks."""
    in_holdout = rng.random(len(table)) < holdout_share
    if len(table) and in_holdout.all():
        raise InputError(f"the random split put all {len(table)} rows in the holdout, leaving none to fit; "
                         f"lower the policy's holdout_share ({holdout_share:g})")
    return table[~in_holdout].reset_index(drop=True), table[in_holdout].reset_index(drop=True)


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
