"""A table's identity for the privacy ledger: a digest of its parsed rows, the same however the table is encoded.

CSV, CSV with CRLF line endings, Parquet (a file or a folder) holding the same rows give one digest, in any row or
column order: values are compared in a canonical form (numbers and booleans as float64, datetimes as UTC
nanoseconds with ISO text read as datetimes, text without surrounding spaces, every kind of missing value alike).
The digest is built from fixed arithmetic and BLAKE2b/SHA-256 only, so it does not change with the pandas version.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

_NULL = np.uint64(0x9E3779B97F4A7C15)


def table_digest(frame: pd.DataFrame) -> str:
    """SHA-256 over the sorted column names, the row count and the sorted 64-bit hashes of the rows."""
    names = sorted(map(str, frame.columns))
    rows = np.zeros(len(frame), dtype=np.uint64)
    for name in names:
        rows = _mix(rows ^ _mix(_column_words(frame[_original(frame, name)]) ^ _word(name)))
    digest = hashlib.sha256("\0".join(names).encode() + f"\n{len(frame)}\n".encode())
    digest.update(np.sort(rows).astype("<u8").tobytes())
    return digest.hexdigest()


def _original(frame: pd.DataFrame, name: str):
    return next(column for column in frame.columns if str(column) == name)


def _column_words(values: pd.Series) -> np.ndarray:
    """One 64-bit word per value, from its canonical form; equal values give equal words, missing ones _NULL."""
    if pd.api.types.is_bool_dtype(values) or (pd.api.types.is_numeric_dtype(values)
                                              and not pd.api.types.is_timedelta64_dtype(values)):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan) + 0.0  # -0.0 becomes 0.0
        return np.where(np.isnan(numbers), _NULL, _mix(numbers.view(np.uint64) ^ _word("number")))
    instants = _instants(values)
    if instants is not None:
        missing = instants.isna().to_numpy()
        ticks = instants.to_numpy(dtype="datetime64[ns]").view(np.int64).astype(np.uint64)
        return np.where(missing, _NULL, _mix(ticks ^ _word("datetime")))
    return _text_words(values)


def _instants(values: pd.Series) -> pd.Series | None:
    """The values as UTC datetimes (naive ones read as UTC), if they are datetimes or all ISO 8601 text."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    elif values.dtype == object or pd.api.types.is_string_dtype(values):
        present = values.dropna()
        if present.empty or not all(isinstance(v, str) for v in present):
            return None
        try:
            parsed = pd.to_datetime(values.str.strip(), format="ISO8601", utc=True)
        except (ValueError, TypeError, OverflowError):
            return None
    else:
        return None
    try:
        return parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None


def _text_words(values: pd.Series) -> np.ndarray:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    words = np.array([_word(str(value).strip(), "text") for value in uniques], dtype=np.uint64)
    return np.where(codes < 0, _NULL, words[np.maximum(codes, 0)] if len(words) else _NULL)


def _word(text: str, kind: str = "name") -> np.uint64:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=kind.encode()[:16])
    return np.uint64(int.from_bytes(digest.digest(), "little"))


def _mix(words) -> np.ndarray:
    """splitmix64's finaliser: a fixed bijection of 64-bit words that spreads every input bit."""
    words = np.asarray(words, dtype=np.uint64)
    with np.errstate(over="ignore"):
        words = (words ^ (words >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        words = (words ^ (words >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return words ^ (words >> np.uint64(31))
