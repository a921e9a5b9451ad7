"""What checking one rule on a table found (`Outcome`), and the dtype check with Great Expectations' meaning,
in pandas: the parts of a rule's pandas check that `tabsynth.metrics.expectations` reports the same way as GX's."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

EXAMPLES = 5  # unexpected synthetic values shown per failed expectation
_OBJECT_TYPES = ("object", "object_", "O")
_PYTHON_TYPES = {"none": (type(None),), "bool": (bool,), "int": (int,), "long": (int,), "float": (float,),
                 "bytes": (bytes,), "complex": (complex,), "str": (str,), "string_types": (str,),
                 "list": (list,), "dict": (dict,)}


@dataclass(frozen=True)
class Outcome:
    """What checking one rule on the synthetic table found: the same fields from GX or pandas."""

    passed: bool
    unexpected_count: int | None = None  # failing rows, for rules checked row by row
    unexpected_rows: tuple[int, ...] = ()  # positions of the first EXAMPLES of them
    observed: str | None = None  # the type found, for dtype rules
    error: str | None = None

    @classmethod
    def of_rows(cls, failing: np.ndarray) -> Outcome:
        rows = np.flatnonzero(failing)
        return cls(not rows.size, len(rows), tuple(rows[:EXAMPLES].tolist()))


def type_outcome(values: pd.Series, type_name: str) -> Outcome:
    """GX's ExpectColumnValuesToBeOfType on pandas: the column's type is compared, except for object
    columns, whose present values are checked one by one."""
    accepted = _type_classes(type_name)
    if values.dtype.type is not np.object_ or type_name in _OBJECT_TYPES:
        return Outcome(values.dtype.type in accepted, observed=values.dtype.type.__name__)
    if not accepted:
        return Outcome(False, error=f"Unrecognized numpy/python type: {type_name}")
    return Outcome.of_rows((values.notna() & ~values.map(lambda v: isinstance(v, accepted))).to_numpy(bool))


def gx_type(dtype: str) -> str:
    """GX's name for a dtype: zoned datetimes are 'Timestamp'; pandas' nullable types (Int64, boolean, string,
    category) the name of the scalar type GX finds in them (GX knows no extension-dtype names); else as is."""
    try:
        resolved = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return dtype
    if isinstance(resolved, pd.DatetimeTZDtype):
        return "Timestamp"
    if isinstance(resolved, np.dtype):
        return dtype
    if resolved.type is str:
        return "str"
    try:
        return np.dtype(resolved.type).name
    except TypeError:
        return resolved.type.__name__


@functools.cache
def _type_classes(name: str) -> tuple[type, ...]:
    """The classes GX accepts for a type name: its numpy type, else a pandas class; and a Python type."""
    try:
        found = [np.dtype(name).type]
    except TypeError:
        candidates = (getattr(pd, name, None), getattr(pd.core.dtypes.dtypes, name, None))
        found = [candidate for candidate in candidates if isinstance(candidate, type)]
    return (*found, *_PYTHON_TYPES.get(name.lower(), ()))
