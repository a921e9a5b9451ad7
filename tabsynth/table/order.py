"""The order column of a child table: the time (or position) of each row among its parent's rows.

Candidates, most time-like first: a column stored as dates or times; text that parses as dates; numbers named
like a time (`time`, `date`, `start`, `day`, `tstart`, `dep_time`); numbers named like a position (`seq`, `enum`,
`order`, `step`, `visit_no`). An end (`tstop`, `end_date`) is a time too, but a start orders events better, so it
ranks below one of its kind. Ties go to the column with fewer missing values, then to the first.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tabsynth.pii.names import name_words
from tabsynth.table.infer import conform_datetime, infer_column

TIME_WORDS = ("time", "date", "start", "begin", "stamp", "datetime", "day", "dt", "ts", "when", "onset")
END_WORDS = ("stop", "end", "finish", "until")
POSITION_WORDS = ("seq", "sequence", "enum", "order", "step", "position", "pos", "rank", "visit", "episode")
SAMPLE_ROWS = 2000  # enough to see whether text parses as dates
RANKS = {"datetime": 5, "text dates": 4, "time": 3, "position": 2, "end": 1}
REASONS = {"datetime": "stored as dates/times", "text dates": "text that parses as dates",
           "time": "numbers named like a time", "position": "numbers named like a position in a sequence",
           "end": "numbers named like the end of a time span"}


@dataclass(frozen=True)
class OrderChoice:
    column: str | None
    reason: str


def choose_order(frame: pd.DataFrame, skip=()) -> OrderChoice:
    """The most time-like column (not in `skip`, the key columns), and why; None when no column looks like one."""
    found = [(str(name), kind) for name in frame.columns if name not in skip
             for kind in [order_kind(str(name), frame[name])] if kind]
    if not found:
        return OrderChoice(None, "no column of dates, times or positions; rows keep their file order")
    found.sort(key=lambda item: (-RANKS[item[1]], frame[item[0]].isna().mean()))
    best, kind = found[0]
    others = ", ".join(f"{name} ({REASONS[k]})" for name, k in found[1:4])
    more = f" (+{len(found) - 4} more)" if len(found) > 4 else ""
    return OrderChoice(best, f"{REASONS[kind]}" + (f"; preferred over {others}{more}" if others else ""))


def order_kind(name: str, values: pd.Series) -> str | None:
    """How a column could order rows (a key of `RANKS`), or None."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    if pd.api.types.is_numeric_dtype(values):
        return _named_kind(name)
    if values.dtype == object and _parses_as_dates(name, values):
        return "text dates"
    return None


def _named_kind(name: str) -> str | None:
    words = name_words(name)
    for kind, vocabulary in (("end", END_WORDS), ("time", TIME_WORDS), ("position", POSITION_WORDS)):
        if any(_names(word, term) for word in words for term in vocabulary):
            return kind
    return None


def _names(word: str, term: str) -> bool:
    """`tstart` names a start and `timestamp` a time; a short term only as a word of its own (`ts`, not `tsh`)."""
    return word == term or (len(term) >= 4 and (word.startswith(term) or word.endswith(term)))


def sortable(name: str, values: pd.Series) -> pd.Series:
    """An order column's values as they sort: text dates parsed in their format (`03/01/2024` after
    `12/31/2023`), anything else as it is."""
    column = _as_dates(name, values)
    return conform_datetime(column, values) if column is not None else values


def _parses_as_dates(name: str, values: pd.Series) -> bool:
    return _as_dates(name, values) is not None


def _as_dates(name: str, values: pd.Series):
    """The schema column of text that parses as dates (with its format), or None."""
    present = values.dropna()
    if present.empty or not present.map(lambda v: isinstance(v, str)).all():
        return None
    sample = present.sample(SAMPLE_ROWS, random_state=0) if len(present) > SAMPLE_ROWS else present
    column = infer_column(name, sample.reset_index(drop=True))
    return column if column.kind == "datetime" else None
