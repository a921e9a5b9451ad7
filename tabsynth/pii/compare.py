"""One spelling per value, so a real value is recognised wherever it turns up: in a fake column, in any other
column, as text or as a number, in upper or lower case."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def comparable(values: pd.Series) -> pd.Series:
    """Each value as trimmed, case-folded text (integers without '.0', midnight dates as YYYY-MM-DD); NaN if missing."""
    present = values.dropna()
    if pd.api.types.is_datetime64_any_dtype(present):
        stamps = pd.to_datetime(present)
        midnight = bool((stamps == stamps.dt.normalize()).all())
        text = stamps.dt.strftime("%Y-%m-%d") if midnight else stamps.map(pd.Timestamp.isoformat)
    elif pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        numbers = present.to_numpy(dtype="float64")
        integral = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)
        text = pd.Series(np.where(integral, np.round(numbers).astype("int64").astype(str), numbers.astype(str)),
                         index=present.index, dtype=object)
    else:
        text = present.astype(str).str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()
    return text.astype(object).reindex(values.index)


def values_to_avoid(frames: Iterable[pd.DataFrame], columns: Iterable[str]) -> frozenset[str]:
    """Every real value of the named columns in the frames, as `comparable` spells it (for fakes to steer clear of)."""
    names = list(columns)
    found: set[str] = set()
    for frame in frames:
        for name in names:
            if name in frame.columns:
                found.update(comparable(frame[name]).dropna())
    return frozenset(found)


def is_text(dtype) -> bool:
    """Whether a column of this dtype holds text (object, string or category)."""
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype))
