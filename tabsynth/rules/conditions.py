"""A small, safe condition language, used by `--where` and by user constraints.

    condition := clause ('or' clause)*
    clause    := atom ('and' atom)*
    atom      := '(' condition ')'
               | operand OP operand                      OP: == != < <= > >=  ('=' reads as '==')
               | column ['not'] 'in' '[' literal, ... ']'
               | column 'is' ['not'] 'null'
    operand   := column | literal
    column    := a name (letters, digits, _ - .) or any name in backticks: `capital gain`
    literal   := number | 'text' | "text" | true | false

Keywords are case-insensitive. Dates compare with ISO strings ('2020-01-01'); a date without a
zone is read in the column's zone. A missing value satisfies no comparison (not even `!=` or
`not in`): select missing values with `is null`. The text is never evaluated as Python: it is
tokenized, parsed into a tree of frozen dataclasses (`tabsynth.rules.parser.parse_condition`), and
checked against the schema.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.table.infer import utc_nanoseconds
from tabsynth.table.schema import Column

OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
             ">=": operator.ge}
EQUALITY = ("==", "!=")
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
LITERALS = ("number", "string", "bool")
KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}
_WORD = r"[^\W\d][\w.\-]*"
_TOKEN = re.compile(rf"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<quoted>`[^`]+`)
  | (?P<op><=|>=|==|!=|<|>|=)
  | (?P<punct>[()\[\],])
  | (?P<bool>(?i:true|false)(?![\w.\-]))
  | (?P<word>{_WORD})
""", re.VERBOSE)


@dataclass(frozen=True)
class Condition:
    """A node of the condition tree."""

    @property
    def columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def text(self) -> str:
        """The canonical form: parsing it gives this condition back."""
        raise NotImplementedError

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """True for the rows that satisfy the condition."""
        raise NotImplementedError

    def fixed_values(self) -> dict[str, object]:
        """Columns pinned to one value by top-level `==` clauses."""
        return {}

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _OnColumn(Condition):
    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True)
class Compare(_OnColumn):
    op: str
    value: object

    @property
    def text(self) -> str:
        return f"{column_text(self.column)} {self.op} {literal_text(self.value)}"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        values = _series(frame, self.column)
        if isinstance(self.value, pd.Timestamp):  # the column may hold parsed dates or ISO text
            tz = values.dt.tz if pd.api.types.is_datetime64_any_dtype(values) else None
            return _compare(utc_nanoseconds(values), self.op, _utc_ns(self.value, tz))
        if is_number(self.value) and pd.api.types.is_numeric_dtype(values):
            return _compare(values.to_numpy(float), self.op, float(self.value))
        return _compare(values.to_numpy(object), self.op, self.value, present=values.notna().to_numpy())

    def fixed_values(self) -> dict[str, object]:
        return {self.column: self.value} if self.op == "==" else {}


@dataclass(frozen=True)
class Membership(_OnColumn):
    values: tuple
    negated: bool = False

    @property
    def text(self) -> str:
        keyword = "not in" if self.negated else "in"
        return f"{column_text(self.column)} {keyword} [{', '.join(map(literal_text, self.values))}]"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        values = _series(frame, self.column)
        inside = values.isin(list(self.values)).to_numpy()
        return values.notna().to_numpy() & (~inside if self.negated else inside)

    def fixed_values(self) -> dict[str, object]:
        return {self.column: self.values[0]} if len(self.values) == 1 and not self.negated else {}


@dataclass(frozen=True)
class IsNull(_OnColumn):
    negated: bool = False

    @property
    def text(self) -> str:
        return f"{column_text(self.column)} is {'not ' if self.negated else ''}null"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        missing = _series(frame, self.column).isna().to_numpy()
        return ~missing if self.negated else missing


@dataclass(frozen=True)
class ColumnCompare(Condition):
    left: str
    op: str
    right: str

    @property
    def columns(self) -> tuple[str, ...]:
        return _unique((self.left, self.right))

    @property
    def text(self) -> str:
        return f"{column_text(self.left)} {self.op} {column_text(self.right)}"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        left, right = _series(frame, self.left), _series(frame, self.right)
        if pd.api.types.is_datetime64_any_dtype(left) and pd.api.types.is_datetime64_any_dtype(right):
            return _compare(utc_nanoseconds(left), self.op, utc_nanoseconds(right))
        present = (left.notna() & right.notna()).to_numpy()
        if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right):
            return _compare(left.to_numpy(float), self.op, right.to_numpy(float), present=present)
        return _compare(left.to_numpy(object), self.op, right.to_numpy(object), present=present)


@dataclass(frozen=True)
class Junction(Condition):
    parts: tuple[Condition, ...]
    word = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return _unique(name for part in self.parts for name in part.columns)

    @property
    def text(self) -> str:
        return f" {self.word} ".join(f"({p.text})" if isinstance(p, Junction) else p.text for p in self.parts)


@dataclass(frozen=True)
class And(Junction):
    word = "and"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        return np.logical_and.reduce([part.mask(frame) for part in self.parts])

    def fixed_values(self) -> dict[str, object]:
        return {k: v for part in self.parts for k, v in part.fixed_values().items()}


@dataclass(frozen=True)
class Or(Junction):
    word = "or"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        return np.logical_or.reduce([part.mask(frame) for part in self.parts])


def parse_value(text: str) -> object:
    """One literal as the language reads it: a number, true/false, quoted text; bare text is text."""
    text = text.strip()
    match = _TOKEN.fullmatch(text)
    return literal_value(match.lastgroup, text) if match and match.lastgroup in LITERALS else text


def column_text(name: str) -> str:
    """A column name as written in a condition: bare when it can be, else in backticks."""
    plain = re.fullmatch(_WORD, name) and name.lower() not in KEYWORDS
    return name if plain else f"`{name}`"


def literal_text(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        value = value.isoformat()
    if isinstance(value, str):
        return f'"{value}"' if "'" in value else f"'{value}'"
    return repr(value.item() if hasattr(value, "item") else value)


def as_timestamp(value: object, tz=None) -> pd.Timestamp:
    """A date value as a Timestamp; a value without a zone is read in `tz` when given."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(tz) if tz is not None and stamp.tzinfo is None else stamp


def column_tz(column: Column):
    """The time zone of a datetime column's dtype, or None."""
    try:
        return getattr(pd.api.types.pandas_dtype(column.dtype), "tz", None)
    except TypeError:
        return None


def _utc_ns(value: object, tz) -> float:
    stamp = as_timestamp(value, tz)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return float(stamp.as_unit("ns").value)


def _compare(left: np.ndarray, op: str, right, present: np.ndarray | None = None) -> np.ndarray:
    """`left op right` where both sides are present; NaN (missing) is never satisfied."""
    if present is None:
        present = ~np.isnan(left) & ~np.isnan(right)
    out = np.zeros(len(left), dtype=bool)
    right_present = right[present] if isinstance(right, np.ndarray) else right
    out[present] = np.asarray(OPERATORS[op](left[present], right_present), dtype=bool)
    return out


def _series(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise InputError(f"column {name!r} is not in the table the condition is applied to")
    return frame[name]


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _unique(names) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            where = f"(at position {position + 1})"
            raise InputError(f"condition {text!r}: unexpected character {text[position]!r} {where}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group(), position))
        position = match.end()
    return tokens


def literal_value(kind: str, text: str) -> object:
    if kind == "string":
        return text[1:-1]
    if kind == "bool":
        return text.lower() == "true"
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
