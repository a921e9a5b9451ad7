"""The parser of the condition language (`tabsynth.rules.conditions`): recursive descent, checked against the schema."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import pandas as pd

from tabsynth.errors import InputError
from tabsynth.rules.conditions import (
    EQUALITY,
    FLIPPED,
    KEYWORDS,
    LITERALS,
    And,
    ColumnCompare,
    Compare,
    Condition,
    IsNull,
    Junction,
    Membership,
    Or,
    as_timestamp,
    column_tz,
    is_number,
    literal_text,
    literal_value,
    tokenize,
)
from tabsynth.table.schema import Column, Schema


def parse_condition(text: str, schema: Schema) -> Condition:
    """Parse and check a condition; every problem is one InputError line naming it."""
    return Parser(text, schema).parse()


@dataclass(frozen=True)
class _ColumnRef:
    column: Column
    position: int


@dataclass(frozen=True)
class _Literal:
    value: object
    position: int


class Parser:
    """Recursive descent over the token list, checking each comparison against the schema."""

    def __init__(self, text: str, schema: Schema):
        self.text, self.schema = text, schema
        self.tokens = tokenize(text)
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

    def _junction(self, kind: type[Junction], parse_part) -> Condition:
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
        if kind in LITERALS:
            return _Literal(literal_value(kind, text), position)
        if kind == "word" and text.lower() == "null":
            self._fail("use 'is null' or 'is not null' to test for missing values", position)
        if kind == "word" and text.lower() in KEYWORDS:
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
            left, right, op = right, left, FLIPPED[op]
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
    if kind == "numerical" and not is_number(value):
        return f"column {name!r} is numerical: compare it with a number, not {literal_text(value)}"
    if kind == "boolean" and not (isinstance(value, bool) or (is_number(value) and value in (0, 1))):
        return f"column {name!r} is true/false: compare it with true or false (or 1 or 0), not {literal_text(value)}"
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
