"""The stages shared by `release`, `fit` and `sample`: split, synthesize within constraints, add identifiers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.errors import ReleaseBlocked
from tabsynth.models.base import Synthesizer
from tabsynth.schema import Schema

SAMPLE_CHUNK = 100_000
MAX_DRAW_FACTOR = 20  # rejection for constraints draws at most this many rows per row kept
RowFilter = Callable[[pd.DataFrame], np.ndarray]


def split(table: pd.DataFrame, holdout_share: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random train/holdout split; the holdout never trains and is the chance baseline for risk checks."""
    order = rng.permutation(len(table))
    n_holdout = int(round(len(table) * holdout_share)) if len(table) >= 2 else 0
    n_holdout = min(n_holdout, len(table) - 1)
    holdout = table.iloc[np.sort(order[:n_holdout])].reset_index(drop=True)
    train = table.iloc[np.sort(order[n_holdout:])].reset_index(drop=True)
    return train, holdout


def sample_modelled(model: Synthesizer, n: int, rng: np.random.Generator, keep: RowFilter | None = None,
                    progress: Callable[[float], None] | None = None) -> tuple[pd.DataFrame, int]:
    """n rows of the modelled columns, in chunks; rows failing `keep` are dropped and replaced (bounded rejection).

    Returns the rows and how many were rejected. Too strict a filter raises instead of looping forever.
    """
    chunks, kept, drawn = [], 0, 0
    while kept < n or not chunks:
        size = min(SAMPLE_CHUNK, max(n - kept, 0))
        chunk = model.sample(size, rng=rng)
        drawn += size
        if keep is not None and size:
            chunk = chunk[keep(chunk)]
        chunks.append(chunk.head(n - kept) if kept < n else chunk)
        kept += len(chunks[-1])
        if progress:
            progress(min(kept / max(n, 1), 1.0))
        if kept < n and drawn >= MAX_DRAW_FACTOR * n + SAMPLE_CHUNK:
            raise ReleaseBlocked(f"the constraints reject almost every sampled row ({kept:,} of {drawn:,} kept); "
                                 "check them against the schema, or use a model that fits the data better")
    rows = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0].reset_index(drop=True)
    return rows, drawn - kept


def add_identifiers(modelled: pd.DataFrame, schema: Schema, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Keys regenerated unique, PII replaced by fakes of the same kind or dropped; columns in table order."""
    columns = {}
    for column in schema.released():
        if column.kind == "id":
            numeric = pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(column.dtype))
            keys = pii.unique_keys(n, rng, integer=numeric)
            columns[column.name] = keys.astype(column.dtype) if numeric else _with_missing(keys, column.missing, rng)
        elif column.kind == "pii":
            columns[column.name] = _with_missing(pii.fake_values(column.pii, n, rng), column.missing, rng)
        else:
            columns[column.name] = modelled[column.name].reset_index(drop=True)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _with_missing(values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Blank out about `share` of the values, as the real column is blank."""
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out
