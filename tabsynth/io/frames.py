"""A pandas DataFrame handed to the Python API as the private table: checked like a file, read as a copy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import InputError


@dataclass(frozen=True, eq=False)
class FrameSource:
    frame: pd.DataFrame
    name: str = "DataFrame"

    def describe(self) -> str:
        return f"a pandas DataFrame ({self.name})" if self.name != "DataFrame" else "a pandas DataFrame"


def check_frame(source: FrameSource) -> FrameSource:
    """The checks a file gets: columns, rows, one name per column."""
    frame = source.frame
    names = [str(name) for name in frame.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{source.name}: duplicate column name(s) {', '.join(map(repr, duplicates))}; "
                         "rename them first")
    if frame.shape[1] == 0:
        raise InputError(f"{source.name}: the table has no columns")
    if len(frame) == 0:
        raise InputError(f"{source.name}: the table has no rows")
    return source


def read_frame(source: FrameSource) -> pd.DataFrame:
    """A copy with string column names, a plain row index, and pandas extension types (category, string,
    nullable integers and booleans) turned into the NumPy-backed columns a file read gives."""
    frame = source.frame.reset_index(drop=True)
    return pd.DataFrame({str(name): _numpy_backed(frame[name]) for name in frame.columns},
                        index=pd.RangeIndex(len(frame)))


def _numpy_backed(series: pd.Series) -> pd.Series:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or isinstance(dtype, pd.StringDtype):
        values = series.astype(object)
        return values.where(values.notna(), np.nan)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_bool_dtype(dtype):
            return series.astype(object).where(series.notna(), np.nan) if series.isna().any() else series.astype(bool)
        if pd.api.types.is_numeric_dtype(dtype):
            if series.isna().any():
                return pd.Series(series.to_numpy(dtype=float, na_value=np.nan), name=series.name)
            return pd.Series(series.to_numpy(dtype=dtype.numpy_dtype), name=series.name)
    return series.copy()
