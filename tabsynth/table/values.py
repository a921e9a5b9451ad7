"""The one conversion between column values and numbers, and back: the codecs, every engine's counts and the
models' decoders see a column's values the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd


def to_numbers(kind: str, series: pd.Series, unit: str = "s", infinite: str = "clip") -> np.ndarray:
    """Numbers as float, dates as wall-clock `unit`s (s or ns) since 1970; NaN where missing; an infinite number
    clipped to the largest float (`infinite="clip"`) or missing (`"missing"`).

    A time with a zone counts by its local wall-clock time in that zone (so a zoned date column bins into its
    own days and decodes to local midnights). DuckDB and Spark, which read a zoned Parquet column as instants,
    count it the same way by converting to the zone in the column's dtype (`scale.sql.number_sql`).
    """
    if kind != "datetime":
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(float)
        return np.where(np.isinf(numbers), np.sign(numbers) * np.finfo(float).max if infinite == "clip" else np.nan,
                        numbers)
    stamps = pd.to_datetime(series, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    numbers = stamps.to_numpy(f"datetime64[{unit}]").astype(np.int64).astype(float)
    numbers[stamps.isna().to_numpy()] = np.nan
    return numbers


def from_numbers(kind: str, dtype: str, name: str, numbers: np.ndarray, unit: str = "s") -> pd.Series:
    """`to_numbers` undone: values of `dtype`; a zoned dtype's wall-clock seconds are localized back to it."""
    if kind != "datetime":
        return as_dtype(pd.Series(numbers, name=name), dtype)
    stamps = pd.Series(as_datetimes(numbers, unit), name=name)
    tz = getattr(pd.api.types.pandas_dtype(dtype), "tz", None)
    if tz is not None:
        stamps = stamps.dt.tz_localize(tz, ambiguous=np.zeros(len(stamps), dtype=bool), nonexistent="shift_forward")
    return as_dtype(stamps, dtype)


def as_datetimes(numbers: np.ndarray, unit: str = "s") -> np.ndarray | pd.DatetimeIndex:
    """`pd.to_datetime(numbers, unit=unit)` (float `unit`s since 1970, NaN missing) as datetime64[ns]. Whole numbers
    (a date or binned time decodes to whole seconds) are scaled as integers, 20 times faster than pandas' float
    path, which gives the same instants for them; other values take that path."""
    scale = _NANOSECONDS[unit]
    present = ~np.isnan(numbers)
    values = np.where(present, numbers, 0.0)
    if len(values) == 0 or np.abs(values).max() * scale >= _MAX_NANOSECONDS or np.any(values != np.floor(values)):
        return pd.to_datetime(numbers, unit=unit)
    nanoseconds = values.astype(np.int64) * scale
    nanoseconds[~present] = np.iinfo(np.int64).min  # NaT
    return nanoseconds.view("datetime64[ns]")


_NANOSECONDS = {"s": 10**9, "ns": 1}
_MAX_NANOSECONDS = 9.2e18  # within int64 nanoseconds (years 1678 to 2261)


def take_categories(categories: tuple, indices: np.ndarray, dtype: str, name: str, categorical: bool = False
                    ) -> pd.Series:
    """categories[indices] as a column of `dtype` (where it converts); index -1 or len(categories) is missing.

    The same column as inferring the dtype of an object array of the values taken, but it takes from a typed
    array where the categories share one numpy dtype, and skips the inference scan where they are all text.
    With `categorical`, a text column (dtype object, distinct text categories) comes back as a pandas Categorical
    of the same values instead: no per-row object references, and Arrow takes it as a dictionary array (the
    streamed writer's fast path; `as_text_columns` turns it back)."""
    if categorical and dtype == "object" and _distinct_text(categories):
        codes = np.where(indices >= len(categories), -1, indices) if len(indices) else indices
        return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object)), name=name)
    values = pd.Series(np.array(categories, dtype=object)).infer_objects().to_numpy()
    if values.dtype == object or (len(indices) and (indices.min() < 0 or indices.max() >= len(categories))):
        values = np.array([*categories, None], dtype=object)
    series = pd.Series(values[indices], name=name)
    if series.dtype == object and not all(isinstance(c, str) for c in categories):
        series = series.infer_objects()
    return as_dtype(series, dtype)


def _distinct_text(categories: tuple) -> bool:
    return all(isinstance(c, str) for c in categories) and len(set(categories)) == len(categories)


def as_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its Categorical columns (from `take_categories(..., categorical=True)`) as object columns."""
    text = [name for name, kind in frame.dtypes.items() if isinstance(kind, pd.CategoricalDtype)]
    if not text:
        return frame
    plain = {name: np.array([*frame[name].cat.categories, None], dtype=object)[frame[name].cat.codes.to_numpy()]
             for name in text}  # code -1 (missing) takes the None at the end
    return frame.assign(**plain)


def plain_value(value):
    """A numpy scalar as the Python scalar it holds; anything else as is."""
    return value.item() if hasattr(value, "item") else value


def as_dtype(series: pd.Series, dtype: str) -> pd.Series:
    """The series as `dtype` where it converts, else unchanged."""
    try:
        return series.astype(dtype, copy=False)
    except (TypeError, ValueError):
        return series
