"""Schema inference: decide each column's kind, with the reason, and record observed facts."""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.errors import SchemaError
from tabsynth.table.schema import Column, Facts, Schema

DISCRETE_MAX_DISTINCT = 25
# Text with more distinct values than this share of its rows is mostly unique: modelling it as categories
# would copy individual values into the synthetic table, so it is treated as an identifier instead.
CATEGORICAL_MAX_SHARE = 0.5
MIN_ROWS_FOR_UNIQUENESS = 20
DATETIME_MIN_PARSED = 0.95
MAX_DECIMALS = 6
NUMERIC_DATE = re.compile(r"^\d{1,2}([/.\-])\d{1,2}\1(\d{2}|\d{4})$")  # 18/03/24, 03.04.2024


def infer_schema(frame: pd.DataFrame, user: Schema | None = None) -> Schema:
    """Infer every column; columns named in `user` keep the user's decisions, with fresh observed facts."""
    _check_column_names(frame)
    if user is not None:
        unknown = [n for n in user.names if n not in frame.columns]
        if unknown:
            raise SchemaError(*[f"column {n!r} is in the schema file but not in the table" for n in unknown])
    columns = []
    for name in frame.columns:
        if user is not None and name in user.names:
            columns.append(_refresh(user[name], frame[name]))
        else:
            columns.append(infer_column(str(name), frame[name]))
    return Schema(tuple(columns))


def _check_column_names(frame: pd.DataFrame) -> None:
    names = [str(c) for c in frame.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaError(f"duplicate column name(s): {', '.join(map(repr, dupes))}")
    if any(n.strip() == "" for n in names):
        raise SchemaError("a column has an empty name")


def infer_column(name: str, values: pd.Series) -> Column:
    missing = float(values.isna().mean())
    present = values.dropna()
    base = dict(name=name, dtype=str(values.dtype), missing=round(missing, 6))
    if present.empty:
        return Column(kind="categorical", reason="all values are missing", observed=Facts(categories=()), **base)
    kind, reason, extra = _decide_kind(name, values, present)
    column = Column(kind=kind, reason=reason, **base, **extra)
    if column.datetime_format:  # text dates: the table the models see holds parsed datetimes
        column = dataclasses.replace(column, dtype=str(conform_datetime(column, values).dtype))
    return dataclasses.replace(column, observed=observe(column, values))


def _decide_kind(name: str, values: pd.Series, present: pd.Series) -> tuple[str, str, dict]:
    if pd.api.types.is_bool_dtype(values) or _is_bool_objects(present):
        return "boolean", "values are true/false", {}
    match = pii.detect_pii(name, values)  # before dates: a date of birth is PII
    if match is not None:
        return "pii", match.reason, {"pii": match.kind}
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(values):
        return "datetime", f"stored as {values.dtype}", {}
    id_reason = _id_reason(name, values, present)
    if id_reason:
        return "id", id_reason, {}
    if pd.api.types.is_numeric_dtype(values):
        return _numerical(present)
    if _is_strings(present):
        fmt = _datetime_format(present)
        if fmt:
            return "datetime", f"strings parse as dates with format {fmt}", {"datetime_format": fmt}
        distinct = present.nunique()
        if distinct > CATEGORICAL_MAX_SHARE * len(present) and distinct >= MIN_ROWS_FOR_UNIQUENESS:
            return "id", (f"text with {distinct} distinct values in {len(present)} rows is mostly unique: "
                          "regenerated, not modelled (set kind: categorical to model it)"), {}
        return "categorical", f"text with {distinct} distinct values", {}
    return "categorical", f"mixed values of {present.map(type).nunique()} types, kept as categories", {}


def _numerical(present: pd.Series) -> tuple[str, str, dict]:
    distinct = present.nunique()
    if distinct == 2:  # a label: a model must treat it as a class, and utility scores it as one
        values = sorted(present.unique().tolist())
        if values == [0, 1]:
            return "boolean", "numbers 0 and 1 only: a yes/no label", {}
        return "categorical", f"numbers {values[0]:g} and {values[1]:g} only: a two-class label", {}
    decimals = _decimals(present.to_numpy(dtype=float))
    discrete = distinct <= DISCRETE_MAX_DISTINCT
    nature = "discrete" if discrete else "continuous"
    kind_word = "integer" if decimals == 0 else "decimal"
    reason = f"{kind_word} numbers, {distinct} distinct values ({nature})"
    return "numerical", reason, {"discrete": discrete, "decimals": decimals}


def _decimals(values: np.ndarray) -> int | None:
    """Fewest decimals that represent every value exactly; None when more than MAX_DECIMALS are needed."""
    finite = values[np.isfinite(values)]
    for places in range(MAX_DECIMALS + 1):
        scaled = finite * 10**places
        if np.allclose(scaled, np.round(scaled), rtol=1e-9, atol=0):
            return places
    return None


def _id_reason(name: str, values: pd.Series, present: pd.Series) -> str | None:
    if len(present) < 2:
        return None
    if pii.is_key_name(name):
        if present.nunique() == len(present):
            return f"name {name!r} suggests a key and every present value is unique"
        return (f"name {name!r} suggests a key and its values repeat (several rows per entity): an entity key, "
                "regenerated unique per row, never modelled (set kind: categorical to model it as codes; if each "
                f"value is a person, `tabsynth inspect --split-by {name}` makes person and events tables)")
    if present.nunique() != len(present):
        return None
    if values.isna().any():
        return None
    if pd.api.types.is_integer_dtype(values):
        ordered = np.sort(present.to_numpy())
        if np.all(np.diff(ordered) == 1):
            return "consecutive integers, every value unique"
    if _is_strings(present) and not present.str.contains(r"\s").any() and len(present) >= MIN_ROWS_FOR_UNIQUENESS:
        return "text codes without spaces, every value unique"
    return None


def _is_strings(present: pd.Series) -> bool:
    return bool(present.map(lambda v: isinstance(v, str)).all())


def _is_bool_objects(present: pd.Series) -> bool:
    return present.dtype == object and bool(present.map(lambda v: isinstance(v, (bool, np.bool_))).all())


def _datetime_format(present: pd.Series) -> str | None:
    """The candidate format that parses the most sampled values, if it parses nearly all of them."""
    sample = present.sample(min(len(present), 500), random_state=0) if len(present) > 500 else present
    shares = {fmt: _parse_datetimes(sample, fmt).notna().mean() for fmt in _candidate_formats(str(sample.iloc[0]))}
    best = max(shares, key=shares.get, default=None)  # ties keep the first: month first, as pandas guesses
    return best if best is not None and shares[best] >= DATETIME_MIN_PARSED else None


def _candidate_formats(first: str) -> list[str]:
    """pandas' guesses from one value, month first then day first, and both orders for d/d/yy-style dates
    (pandas guesses none for two-digit years, and its guess from one value cannot see that a day exceeds 12)."""
    with warnings.catch_warnings():  # pandas warns about day-first guesses; the user sees the chosen format
        warnings.simplefilter("ignore")
        guesses = [pd.tseries.api.guess_datetime_format(first, dayfirst=dayfirst) for dayfirst in (False, True)]
    numeric = NUMERIC_DATE.match(first.strip())
    if numeric:
        sep, year = numeric.group(1), "%Y" if len(numeric.group(2)) == 4 else "%y"
        guesses += [f"%m{sep}%d{sep}{year}", f"%d{sep}%m{sep}{year}"]
    return [fmt for fmt in dict.fromkeys(guesses) if fmt and re.search(r"%[Yy]", fmt)]


def _parse_datetimes(values: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):  # mixed offsets (e.g. across DST)
            parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
        return parsed


def observe(column: Column, values: pd.Series) -> Facts:
    """Private facts of one column: bounds for numbers and dates, category list otherwise."""
    present = values.dropna()
    if present.empty or column.kind in ("pii", "id"):
        return Facts()
    if column.kind == "numerical":
        finite = pd.to_numeric(present, errors="coerce")
        finite = finite[np.isfinite(finite)]
        return Facts(min=_scalar(finite.min()), max=_scalar(finite.max())) if len(finite) else Facts()
    if column.kind == "datetime":
        parsed = conform_datetime(column, present).dropna()
        return Facts(min=parsed.min().isoformat(), max=parsed.max().isoformat()) if len(parsed) else Facts()
    counts = present.value_counts()
    return Facts(categories=tuple(_scalar(v) for v in counts.index))


def _scalar(value):
    return value.item() if hasattr(value, "item") else value


def conform_datetime(column: Column, values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return _parse_datetimes(values, column.datetime_format) if column.datetime_format else pd.to_datetime(
        values, errors="coerce", utc=True
    )


def utc_nanoseconds(values: pd.Series) -> np.ndarray:
    """Datetimes as float nanoseconds since 1970 in UTC (naive ones taken as UTC); NaN where missing."""
    stamps = pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)
    out = stamps.astype("datetime64[ns]").astype("int64").to_numpy(float)
    out[stamps.isna().to_numpy()] = np.nan
    return out


def conform(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The table as the models see it: datetime strings parsed; everything else as read."""
    out = frame.copy()
    for column in schema.columns:
        if column.kind == "datetime":
            out[column.name] = conform_datetime(column, out[column.name])
    return out


def _refresh(user_column: Column, values: pd.Series) -> Column:
    fresh = dataclasses.replace(user_column, missing=round(float(values.isna().mean()), 6))
    return dataclasses.replace(fresh, observed=observe(fresh, values))
