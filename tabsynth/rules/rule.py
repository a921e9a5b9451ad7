"""Rules a synthetic table must meet: one meaning each, checked as a GX expectation and with pandas.

`tabsynth.rules.constraints` compiles them from the schema's facts and the user's constraints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tabsynth.rules.conditions import Condition
from tabsynth.rules.outcome import Outcome, gx_type, type_outcome
from tabsynth.table.infer import utc_nanoseconds

# ---- rules: one GX expectation each, and the same test in pandas --------------------------------

@dataclass(frozen=True)
class Rule:
    """A rule on `column`, the column GX validates (a helper column for checks and combinations)."""

    column: str
    gx_class: ClassVar[str] = ""  # the GX expectation
    template: ClassVar[str] = ""  # the label, formatted with the rule's fields

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns of the synthetic table the rule reads."""
        return (self.column,)

    def label(self) -> str:
        return self.template.format(**vars(self))

    def gx_arguments(self) -> dict:
        return {}

    def mask(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Rows that pass; None for table-level rules (existence, dtype, uniqueness)."""
        return None

    def check(self, frame: pd.DataFrame) -> Outcome:
        """The rule checked with pandas as GX checks it, on a frame with a RangeIndex holding `columns`."""
        return Outcome.of_rows(~self.mask(frame))

    def helper(self, frame: pd.DataFrame) -> pd.Series | None:
        """Values of the helper column GX validates, for rules computed by tabsynth."""
        return None


@dataclass(frozen=True)
class ColumnExists(Rule):
    gx_class = "ExpectColumnToExist"
    template = "{column}: present"

    @property
    def columns(self) -> tuple[str, ...]:
        return ()  # reads the table's header, not the column

    def check(self, frame):
        return Outcome(self.column in frame.columns)


@dataclass(frozen=True)
class Unique(Rule):
    gx_class = "ExpectColumnValuesToBeUnique"
    template = "{column}: unique values"

    def check(self, frame):
        values = frame[self.column]
        return Outcome.of_rows((values.notna() & values.duplicated(keep=False)).to_numpy())


@dataclass(frozen=True)
class HasType(Rule):
    dtype: str
    gx_class = "ExpectColumnValuesToBeOfType"
    template = "{column}: dtype {dtype}"

    def gx_arguments(self) -> dict:
        return {"type_": gx_type(self.dtype)}

    def check(self, frame):
        return type_outcome(frame[self.column], gx_type(self.dtype))


@dataclass(frozen=True)
class NotNull(Rule):
    gx_class = "ExpectColumnValuesToNotBeNull"
    template = "{column}: no missing values (the real column has none)"

    def mask(self, frame):
        return frame[self.column].notna().to_numpy()


@dataclass(frozen=True)
class InSet(Rule):
    values: tuple
    source: str
    gx_class = "ExpectColumnValuesToBeInSet"
    template = "{column}: values among the {source} categories"

    def gx_arguments(self) -> dict:
        return {"value_set": list(self.values)}

    def mask(self, frame):
        values = frame[self.column]
        return (values.isna() | values.isin(list(self.values))).to_numpy()


@dataclass(frozen=True)
class Between(Rule):
    min: Any
    max: Any
    source: str
    gx_class = "ExpectColumnValuesToBeBetween"
    template = "{column}: within the {source} bounds"

    def gx_arguments(self) -> dict:
        return {"min_value": self.min, "max_value": self.max}

    def mask(self, frame):
        values = frame[self.column]  # missing values compare false: they pass, as GX skips them
        below = values < self.min if self.min is not None else False
        above = values > self.max if self.max is not None else False
        return ~(below | above).to_numpy(bool, na_value=False)


@dataclass(frozen=True)
class MatchesRegex(Rule):
    pattern: str
    gx_class = "ExpectColumnValuesToMatchRegex"
    template = "{column}: matches {pattern!r}"

    def gx_arguments(self) -> dict:
        return {"regex": self.pattern}

    def mask(self, frame):
        values = frame[self.column]
        present = values.notna()
        # as GX does for pandas: the value's text must contain a match
        matches = values[present].astype(str).str.contains(self.pattern, regex=True)
        return (~present | matches.reindex(values.index, fill_value=True)).to_numpy(bool)


@dataclass(frozen=True)
class Satisfies(Rule):
    """A check: the condition's result per row is the helper column, expected to be all true."""

    condition: Condition
    gx_class = "ExpectColumnValuesToBeInSet"
    template = "check: {condition.text}"

    @property
    def columns(self) -> tuple[str, ...]:
        return self.condition.columns

    def gx_arguments(self) -> dict:
        return {"value_set": [True]}

    def mask(self, frame):
        return self.condition.mask(frame)

    def helper(self, frame):
        return pd.Series(self.mask(frame), index=frame.index)


@dataclass(frozen=True)
class InOrder(Rule):
    """`first <= second` wherever both dates are present: an order every real training row holds, learnt from
    them (so never for a DP release). The per-row result is the helper column, expected to be all true."""

    first: str
    second: str
    gx_class = "ExpectColumnValuesToBeInSet"
    template = "{first} <= {second} (as in every real row)"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.first, self.second)

    def gx_arguments(self) -> dict:
        return {"value_set": [True]}

    def mask(self, frame):
        return ~(utc_nanoseconds(frame[self.first]) > utc_nanoseconds(frame[self.second]))  # NaN: missing, passes

    def helper(self, frame):
        return pd.Series(self.mask(frame), index=frame.index)


@dataclass(frozen=True)
class InCombinations(Rule):
    """Fixed combinations: each row's values as one key (the helper column), expected among the allowed keys."""

    names: tuple[str, ...]
    allowed: frozenset
    source: str
    gx_class = "ExpectColumnValuesToBeInSet"

    @property
    def columns(self) -> tuple[str, ...]:
        return self.names

    def label(self) -> str:
        return f"{', '.join(self.names)}: combinations {self.source}"

    def gx_arguments(self) -> dict:
        return {"value_set": sorted(self.allowed)}

    def mask(self, frame):
        return self.helper(frame).isin(self.allowed).to_numpy()

    def helper(self, frame):
        return pd.Series(combination_keys(frame, self.names), index=frame.index)


def row_key(values) -> str:
    return json.dumps([None if _is_missing(v) else str(v) for v in values])


def combination_keys(frame: pd.DataFrame, names: tuple[str, ...]) -> list[str]:
    return [row_key(row) for row in zip(*(frame[name].tolist() for name in names), strict=True)]


def _is_missing(value) -> bool:
    return value is None or (not isinstance(value, (str, tuple, list)) and bool(pd.isna(value)))
