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
tokenized, parsed into a tree of frozen dataclasses, and checked against the schema.
"""

from __future__ import annotations

import difflib
import operator
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.infer import utc_nanoseconds
from tabsynth.schema import Column, Schema

OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
             ">=": operator.ge}
EQUALITY = ("==", "!=")
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_LITERALS = ("number", "string", "bool")
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}
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
        if _is_number(self.value) and pd.api.types.is_numeric_dtype(values):
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
class _Junction(Condition):
    parts: tuple[Condition, ...]
    word = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return _unique(name for part in self.parts for name in part.columns)

    @property
    def text(self) -> str:
        return f" {self.word} ".join(f"({p.text})" if isinstance(p, _Junction) else p.text for p in self.parts)


@dataclass(frozen=True)
class And(_Junction):
    word = "and"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        return np.logical_and.reduce([part.mask(frame) for part in self.parts])

    def fixed_values(self) -> dict[str, object]:
        return {k: v for part in self.parts for k, v in part.fixed_values().items()}


@dataclass(frozen=True)
class Or(_Junction):
    word = "or"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        return np.logical_or.reduce([part.mask(frame) for part in self.parts])


def parse_condition(text: str, schema: Schema) -> Condition:
    """Parse and check a condition; every problem is one InputError line naming it."""
    return _Parser(text, schema).parse()


def parse_value(text: str) -> object:
    """One literal as the language reads it: a number, true/false, quoted text; bare text is text."""
    text = text.strip()
    match = _TOKEN.fullmatch(text)
    return _literal_value(match.lastgroup, text) if match and match.lastgroup in _LITERALS else text


def column_text(name: str) -> str:
    """A column name as written in a condition: bare when it can be, else in backticks."""
    plain = re.fullmatch(_WORD, name) and name.lower() not in _KEYWORDS
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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _unique(names) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _tokenize(text: str) -> list[tuple[str, str, int]]:
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


def _literal_value(kind: str, text: str) -> object:
    if kind == "string":
        return text[1:-1]
    if kind == "bool":
        return text.lower() == "true"
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)


@dataclass(frozen=True)
class _ColumnRef:
    column: Column
    position: int


@dataclass(frozen=True)
class _Literal:
    value: object
    position: int


class _Parser:
    """Recursive descent over the token list, checking each comparison against the schema."""

    def __init__(self, text: str, schema: Schema):
        self.text, self.schema = text, schema
        self.tokens = _tokenize(text)
        self.index = 0

    def parse(self) -> Condition:
        if not self.tokens:
            raise InputError("the condition is empty")
        condition = self._disjunction()
        if self.index < len(self.tokens):
            self._fail(f"unexpected {self._peek()[1]!r}")
        return condition

    def _fail(self, problem: str, position: int | None = None):
        if position is None:
            position = self._peek()[2] if self.index < len(self.tokens) else len(self.text)
        raise InputError(f"condition {self.text!r}: {problem} (at position {position + 1})")

    def _peek(self) -> tuple[str, str, int]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "", len(self.text))

    def _next(self) -> tuple[str, str, int]:
        token = self._peek()
        if token[0] == "end":
            self._fail("the condition ends too early")
        self.index += 1
        return token

    def _keyword(self, *words: str) -> bool:
        kind, text, _ = self._peek()
        if kind == "word" and text.lower() in words:
            self.index += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        if self._peek()[1] != text:
            self._fail(f"expected {text!r}, found {self._peek()[1] or 'the end'!r}")
        self.index += 1

    def _disjunction(self) -> Condition:
        return self._junction(Or, self._conjunction)

    def _conjunction(self) -> Condition:
        return self._junction(And, self._atom)

    def _junction(self, kind: type[_Junction], parse_part) -> Condition:
        parts = [parse_part()]
        while self._keyword(kind.word):
            parts.append(parse_part())
        return parts[0] if len(parts) == 1 else kind(tuple(_flatten(parts, kind)))

    def _atom(self) -> Condition:
        if self._peek()[1] == "(":
            self.index += 1
            inner = self._disjunction()
            self._expect(")")
            return inner
        left = self._operand()
        if self._keyword("is"):
            negated = self._keyword("not")
            if not self._keyword("null"):
                self._fail("expected 'null' after 'is'")
            return IsNull(self._column_of(left).name, negated)
        if self._keyword("not"):
            if not self._keyword("in"):
                self._fail("expected 'in' after 'not'")
            return self._membership(left, negated=True)
        if self._keyword("in"):
            return self._membership(left, negated=False)
        kind, op, position = self._next()
        if kind != "op":
            self._fail(f"expected a comparison such as ==, <, in or is null, found {op!r}", position)
        return self._comparison(left, "==" if op == "=" else op, self._operand())

    def _operand(self) -> _ColumnRef | _Literal:
        kind, text, position = self._next()
        if kind in _LITERALS:
            return _Literal(_literal_value(kind, text), position)
        if kind == "word" and text.lower() == "null":
            self._fail("use 'is null' or 'is not null' to test for missing values", position)
        if kind == "word" and text.lower() in _KEYWORDS:
            self._fail(f"expected a column or a value, found {text!r}", position)
        if kind not in ("word", "quoted"):
            self._fail(f"expected a column or a value, found {text!r}", position)
        if self._peek()[1] == "(":
            self._fail(f"function calls are not allowed ({text!r})", position)
        return _ColumnRef(self._lookup(text.strip("`") if kind == "quoted" else text, position), position)

    def _lookup(self, name: str, position: int) -> Column:
        if name in self.schema.names:
            return self.schema[name]
        close = difflib.get_close_matches(name, self.schema.names, n=1)
        self._fail(f"unknown column {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""), position)

    def _column_of(self, operand) -> Column:
        if not isinstance(operand, _ColumnRef):
            self._fail("expected a column name on the left", operand.position)
        return operand.column

    def _membership(self, left, negated: bool) -> Condition:
        column = self._column_of(left)
        if column.kind == "datetime":
            self._fail(f"column {column.name!r} holds dates: compare it with <, <=, >, >=", left.position)
        opener = self._next()
        if opener[1] not in "([":
            self._fail(f"expected a list such as ['a', 'b'] after 'in', found {opener[1]!r}", opener[2])
        values = [self._checked(column, "==", self._literal())]
        while self._peek()[1] == ",":
            self.index += 1
            values.append(self._checked(column, "==", self._literal()))
        self._expect("]" if opener[1] == "[" else ")")
        return Membership(column.name, tuple(values), negated)

    def _literal(self) -> _Literal:
        operand = self._operand()
        if not isinstance(operand, _Literal):
            self._fail("a list holds values, not columns", operand.position)
        return operand

    def _comparison(self, left, op: str, right) -> Condition:
        if isinstance(left, _Literal) and isinstance(right, _Literal):
            self._fail("the comparison holds no column", left.position)
        if isinstance(left, _Literal):
            left, right, op = right, left, _FLIPPED[op]
        if isinstance(right, _ColumnRef):
            return self._column_comparison(left, op, right)
        return Compare(left.column.name, op, self._checked(left.column, op, right))

    def _column_comparison(self, left: _ColumnRef, op: str, right: _ColumnRef) -> Condition:
        a, b = left.column, right.column
        ordered = a.kind in ("numerical", "datetime")
        if a.kind != b.kind and not {a.kind, b.kind} <= {"id", "pii", "categorical"}:
            self._fail(f"cannot compare {a.kind} column {a.name!r} with {b.kind} column {b.name!r}", left.position)
        if op not in EQUALITY and not ordered:
            self._fail(f"column {a.name!r} is {a.kind}: only ==, !=, in and not in apply", left.position)
        return ColumnCompare(a.name, op, b.name)

    def _checked(self, column: Column, op: str, literal: _Literal) -> object:
        """The literal as a value of the column's kind, or a one-line error naming both."""
        problem = _value_problem(column, op, literal.value)
        if problem:
            self._fail(problem, literal.position)
        return as_timestamp(literal.value, column_tz(column)) if column.kind == "datetime" else literal.value


def _value_problem(column: Column, op: str, value: object) -> str | None:
    name, kind = column.name, column.kind
    if op not in EQUALITY and kind not in ("numerical", "datetime"):
        return f"column {name!r} is {kind}: only ==, !=, in and not in apply"
    if kind == "numerical" and not _is_number(value):
        return f"column {name!r} is numerical: compare it with a number, not {literal_text(value)}"
    if kind == "boolean" and not isinstance(value, bool):
        return f"column {name!r} is true/false: compare it with true or false, not {literal_text(value)}"
    if kind == "datetime":
        return _date_problem(name, value)
    if kind == "categorical":
        return _category_problem(name, column.bounds().categories, value)
    return None


def _date_problem(name: str, value: object) -> str | None:
    if isinstance(value, str) and re.match(r"\d{4}-\d\d", value):
        try:
            pd.Timestamp(value)
            return None
        except ValueError:
            pass
    return f"column {name!r} holds dates: compare it with an ISO date such as '2020-01-01', not {literal_text(value)}"


def _category_problem(name: str, categories, value: object) -> str | None:
    if not categories:
        return None
    text_categories = all(isinstance(c, str) for c in categories)
    if text_categories != isinstance(value, str):
        wanted = "text in quotes" if text_categories else "a value without quotes"
        return f"column {name!r} is categorical: compare it with {wanted}, not {literal_text(value)}"
    if value in categories:
        return None
    close = [c for c in categories if str(c).lower() == str(value).lower()]
    close = close or difflib.get_close_matches(str(value), [str(c) for c in categories], n=1)
    hint = f"; did you mean {literal_text(close[0])}?" if close and text_categories else ""
    return f"{literal_text(value)} is not a category of column {name!r}{hint}"


def _flatten(parts: list[Condition], kind: type) -> list[Condition]:
    return [inner for part in parts for inner in (part.parts if isinstance(part, kind) else (part,))]
