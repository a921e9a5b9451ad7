"""Identifier columns of a synthetic table: keys regenerated unique, PII replaced by safe fakes.

A table written in chunks keeps its keys unique across chunks with `ChunkKeys`: integer keys are offset by the
rows before the chunk, text keys are the row's position under a random bijection of 48-bit numbers."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.table.schema import Schema

_HEX_DIGITS = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
KEY_HEX_WIDTH = 12  # 48 bits


def add_identifiers(modelled: pd.DataFrame, schema: Schema, n: int, rng: np.random.Generator,
                    avoid: Collection[str] = (), *, keys: dict[str, tuple[int, int]] | None = None,
                    offset: int = 0) -> pd.DataFrame:
    """Keys regenerated unique, PII replaced by fakes of the same kind (none equal to a value in `avoid`, the
    real PII values) or dropped; columns in table order.

    With `keys` (from `key_bijections`) the rows are the chunk starting at row `offset` of a longer table, and
    its keys differ from every other chunk's (`unique_keys_from`)."""
    columns = {}
    for column in schema.released():
        share = column.missing or 0.0  # None when the schema withholds it (DP model folders)
        if column.kind == "id":
            numeric = pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(column.dtype))
            made = _new_keys(numeric, n, rng, None if keys is None else keys[column.name], offset)
            columns[column.name] = made.astype(column.dtype) if numeric else _with_missing(made, share, rng)
        elif column.kind == "pii":
            columns[column.name] = _with_missing(pii.fake_values(column.pii, n, rng, avoid=avoid), share, rng)
        else:
            columns[column.name] = _positional(modelled[column.name])
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)  # no consolidation: it copies every column


def key_bijections(schema: Schema, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """For each key column, a random bijection of 48-bit numbers (odd multiplier, shift), fixed for all chunks."""
    return {c.name: (int(rng.integers(0, 2**47)) * 2 + 1, int(rng.integers(0, 2**48)))
            for c in schema.columns if c.kind == "id"}


def chunk_text_keys(bijection: tuple[int, int], offset: int, n: int) -> np.ndarray:
    """Rows offset..offset+n-1 under the bijection, as 12 uppercase hex digits (object array)."""
    multiplier, shift = bijection
    position = np.arange(offset, offset + n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic mod 2**64, then mod 2**48
        numbers = (position * np.uint64(multiplier) + np.uint64(shift)) & np.uint64(2**48 - 1)
    return hex_text(numbers, KEY_HEX_WIDTH)


def hex_text(numbers: np.ndarray, width: int) -> np.ndarray:
    """Unsigned numbers as `width` uppercase hex digits each, without a Python loop (object array of str)."""
    shifts = np.arange(4 * (width - 1), -1, -4, dtype=np.uint64)
    digits = _HEX_DIGITS[((numbers[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]
    return np.ascontiguousarray(digits).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _new_keys(numeric: bool, n: int, rng: np.random.Generator, bijection: tuple[int, int] | None,
              offset: int) -> np.ndarray:
    """n distinct keys: integers offset+1..offset+n in random order, or 12 hex digits (random, or the rows'
    positions under `bijection` when the table is written in chunks)."""
    if numeric:
        return pii.unique_keys(n, rng, integer=True) + offset
    if bijection is None:
        return pii.unique_keys(n, rng, integer=False)
    return chunk_text_keys(bijection, offset, n)


def _positional(series: pd.Series) -> pd.Series:
    """The series indexed 0..n-1 (no copy when it already is)."""
    if isinstance(series.index, pd.RangeIndex) and series.index.start == 0 and series.index.step == 1:
        return series
    return series.reset_index(drop=True)


def _with_missing(values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Blank out about `share` of the values, as the real column is blank."""
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out
