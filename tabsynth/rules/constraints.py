"""Constraints a synthetic table must meet: the user's constraints file and the schema's facts, compiled to rules.

Rules come from two places. The schema's facts (`Column.bounds()`: declared, else observed):
released columns exist, modelled columns keep their dtype, numbers and dates stay within their
bounds, categories among the known ones, no missing values where the real column has none, and
keys (`kind: id`) are unique. Given the real training rows (never for a DP release), also the date order
each pair of datetime columns holds in every one of them (`learnt_orders`: admitted <= discharged). And user
constraints, a YAML list under `constraints:`:

    constraints:
      - check: "admitted <= discharged"          # any condition of tabsynth.rules.conditions
      - range: {column: age, min: 0, max: 120}
      - regex: {column: zip, pattern: '^[0-9]{5}$'}
      - combination: {columns: [city, state]}    # only combinations seen in the real table
      - combination: {columns: [city, state], allowed: [[Paris, IDF], [Lyon, ARA]]}

Every rule (`tabsynth.rules.rule`) has one meaning, checked two ways: as a GX expectation
(`tabsynth.metrics.expectations`) and with pandas (`Rule.check`; `rows_passing`, used while sampling, keeps
the rows passing every row-level rule). `tabsynth.metrics.constraints.check_constraints` reports on them.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pydantic

from tabsynth.errors import InputError
from tabsynth.io.files import read_yaml
from tabsynth.rules.conditions import as_timestamp, column_tz
from tabsynth.rules.parser import parse_condition
from tabsynth.rules.rule import (
    Between,
    ColumnExists,
    HasType,
    InCombinations,
    InOrder,
    InSet,
    MatchesRegex,
    NotNull,
    Rule,
    Satisfies,
    Unique,
    combination_keys,
    row_key,
)
from tabsynth.table.infer import utc_nanoseconds
from tabsynth.table.schema import MODELLED_KINDS, Column, Schema

_HELPER_PREFIX = "__tabsynth_constraint_"
_ORDER_PREFIX = "__tabsynth_order_"
MIN_ORDER_ROWS = 20  # real rows with both dates present before their order counts as a fact of the table
Bound = float | int | datetime.date | str | None


# ---- user constraints (YAML) -------------------------------------------------------------------

class _Spec(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class RangeSpec(_Spec):
    column: str
    min: Bound = None
    max: Bound = None


class RegexSpec(_Spec):
    column: str
    pattern: str

    @pydantic.field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return pattern


class CombinationSpec(_Spec):
    """Fixed combinations. Without `allowed`, the combinations seen in the real training table are
    learnt at validation time: that reads private rows, so a DP release must declare `allowed`."""

    columns: tuple[str, ...] = pydantic.Field(min_length=2)
    allowed: tuple[tuple[Any, ...], ...] | None = None

    @pydantic.model_validator(mode="after")
    def _same_width(self) -> CombinationSpec:
        if self.allowed and any(len(row) != len(self.columns) for row in self.allowed):
            raise ValueError(f"every allowed combination needs {len(self.columns)} values, one per column")
        return self


class CheckConstraint(_Spec):
    check: str

    def rules(self, schema: Schema, real: pd.DataFrame | None, target: str) -> list[Rule]:
        return [Satisfies(target, parse_condition(self.check, schema))]


class RangeConstraint(_Spec):
    range: RangeSpec

    def rules(self, schema: Schema, real: pd.DataFrame | None, target: str) -> list[Rule]:
        column = _schema_column(schema, self.range.column)
        if column.kind not in ("numerical", "datetime") or self.range.min is None and self.range.max is None:
            raise InputError(f"range on {column.name!r}: give min and/or max of a numerical or date column")
        return [Between(column.name, _bound(column, self.range.min), _bound(column, self.range.max), "constraint's")]


class RegexConstraint(_Spec):
    regex: RegexSpec

    def rules(self, schema: Schema, real: pd.DataFrame | None, target: str) -> list[Rule]:
        return [MatchesRegex(_schema_column(schema, self.regex.column).name, self.regex.pattern)]


class CombinationConstraint(_Spec):
    combination: CombinationSpec

    def rules(self, schema: Schema, real: pd.DataFrame | None, target: str) -> list[Rule]:
        names = tuple(_schema_column(schema, name).name for name in self.combination.columns)
        if self.combination.allowed is not None:
            allowed = frozenset(row_key(row) for row in self.combination.allowed)
            return [InCombinations(target, names, allowed, "declared")]
        if real is None:
            raise InputError(f"combination of {', '.join(names)}: list the allowed combinations "
                             "or give the real table to learn them from")
        return [InCombinations(target, names, frozenset(combination_keys(real, names)), "seen in the real table")]


def _constraint_kind(item: Any) -> str | None:
    return next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None


Constraint = Annotated[
    Annotated[CheckConstraint, pydantic.Tag("check")] | Annotated[RangeConstraint, pydantic.Tag("range")]
    | Annotated[RegexConstraint, pydantic.Tag("regex")] | Annotated[CombinationConstraint, pydantic.Tag("combination")],
    pydantic.Discriminator(_constraint_kind, custom_error_type="constraint_kind", custom_error_context={},
                           custom_error_message="each constraint is one of: check, range, regex, combination"),
]


class ConstraintFile(_Spec):
    constraints: tuple[Constraint, ...] = ()


def load_constraints(path: str | Path) -> list[Constraint]:
    """The constraints of a YAML file; every problem is one InputError line."""
    path = Path(path)
    data = read_yaml(path, "constraints", InputError)
    try:
        return list(ConstraintFile.model_validate({} if data is None else data).constraints)
    except pydantic.ValidationError as exc:
        raise InputError(*[f"constraints file {path.name}: {_error_place(e['loc'])}{e['msg']}"
                           for e in exc.errors()]) from None


def _error_place(loc: tuple) -> str:
    if len(loc) < 2 or loc[0] != "constraints":
        return ""
    kind = f" ({loc[2]})" if len(loc) > 2 else ""
    field = ".".join(map(str, loc[4:]))
    return f"constraint #{loc[1] + 1}{kind}: " + (f"{field}: " if field else "")


def _column_rules(column: Column) -> list[Rule]:
    """Rules from the facts the schema holds about one released column."""
    name, bounds = column.name, column.bounds()
    rules: list[Rule] = [ColumnExists(name)]
    if column.kind in MODELLED_KINDS and column.dtype != "category":  # GX cannot name pandas' category type;
        rules.append(HasType(name, column.dtype))  # the category list rule below checks such columns
    if column.missing == 0:
        rules.append(NotNull(name))
    if column.kind == "id":
        rules.append(Unique(name))
    if column.kind in ("numerical", "datetime") and (bounds.min is not None or bounds.max is not None):
        rules.append(Between(name, _bound(column, bounds.min), _bound(column, bounds.max), "schema"))
    if column.kind in ("categorical", "boolean") and bounds.categories is not None:
        rules.append(InSet(name, tuple(bounds.categories), "schema"))
    return rules


def compile_rules(schema: Schema, constraints: list[Constraint], real: pd.DataFrame | None = None) -> list[Rule]:
    """The user's rules, each constraint checked against the schema, then the date orders learnt from `real`
    (when given), then the schema's in column order."""
    return user_rules(schema, constraints, real) + table_rules(schema, real)


def user_rules(schema: Schema, constraints: list[Constraint], real: pd.DataFrame | None = None) -> list[Rule]:
    """The rules of the user's constraints, in order, each constraint checked against the schema."""
    rules: list[Rule] = []
    for number, constraint in enumerate(constraints, start=1):
        try:
            rules += constraint.rules(schema, real, f"{_HELPER_PREFIX}{number}")
        except InputError as exc:
            raise InputError(*[f"constraint #{number}: {line}" for line in exc.problems]) from None
    return rules


def table_rules(schema: Schema, real: pd.DataFrame | None = None) -> list[Rule]:
    """The rules nobody wrote: the date orders learnt from `real` (when given), then the schema's facts in
    column order."""
    learnt = learnt_orders(schema, real) if real is not None else []
    return learnt + [rule for column in schema.released() for rule in _column_rules(column)]


def learnt_orders(schema: Schema, real: pd.DataFrame) -> list[Rule]:
    """`first <= second` for each pair of datetime columns that every real row with both dates holds (at least
    `MIN_ORDER_ROWS` of them); reads the private rows, so only for releases that are not DP."""
    names = [c.name for c in schema.modelled() if c.kind == "datetime" and c.name in real.columns]
    stamps = {name: utc_nanoseconds(real[name]) for name in names}
    rules: list[Rule] = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = stamps[first], stamps[second]
            both = ~np.isnan(a) & ~np.isnan(b)
            if both.sum() < MIN_ORDER_ROWS:
                continue
            if np.all(a[both] <= b[both]):
                rules.append(InOrder(f"{_ORDER_PREFIX}{len(rules) + 1}", first, second))
            elif np.all(b[both] <= a[both]):
                rules.append(InOrder(f"{_ORDER_PREFIX}{len(rules) + 1}", second, first))
    return rules


def rows_passing(frame: pd.DataFrame, rules: list[Rule]) -> np.ndarray:
    """Rows passing every row-level rule; rules on columns the frame lacks (PII, keys) are skipped."""
    passing, present = np.ones(len(frame), dtype=bool), set(frame.columns)
    for rule in rules:
        if set(rule.columns) <= present:
            mask = rule.mask(frame)
            if mask is not None:
                passing &= mask
    return passing


def valid_rows(frame: pd.DataFrame, schema: Schema, constraints: list[Constraint],
               real: pd.DataFrame | None = None) -> np.ndarray:
    """The row-level rules of `check_constraints`, evaluated with pandas."""
    return rows_passing(frame, compile_rules(schema, constraints, real))


# ---- helpers -----------------------------------------------------------------------------------

def _schema_column(schema: Schema, name: str) -> Column:
    if name not in schema.names:
        raise InputError(f"unknown column {name!r}")
    return schema[name]


def _bound(column: Column, value: Bound):
    """A bound in the column's terms: a number, or a date as a Timestamp in the column's zone."""
    if value is None:
        return None
    if column.kind == "datetime":
        try:
            return as_timestamp(value, column_tz(column))
        except ValueError:
            raise InputError(f"column {column.name!r}: the bound {value!r} is not a date") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"column {column.name!r}: the bound {value!r} is not a number")
    return value
