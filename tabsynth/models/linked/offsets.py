"""Columns held as their distance to a reference column of the same kind: a discharge date as days after the
admission, an episode's end as time after its start, a first visit as time after the card was opened.

A column is held so when every real row where both are present has it at or after the reference; the model then
learns a non-negative distance, and the rebuilt column can never come before its reference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.table.schema import Column
from tabsynth.table.values import from_numbers, to_numbers

TIME_UNITS_NS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)
ORDERED_KINDS = ("datetime", "numerical")


def time_unit(kind: str, differences: np.ndarray) -> float:
    """Datetimes: the largest of day, hour, ..., nanosecond that every difference is a whole multiple of (in ns);
    numbers: 1."""
    if kind != "datetime":
        return 1.0
    finite = differences[np.isfinite(differences)]
    return float(next(u for u in TIME_UNITS_NS if np.all(np.mod(finite, u) == 0)))


@dataclass(frozen=True)
class Offset:
    column: Column  # the column as the table holds it
    reference: str  # the column it is measured from (same kind)
    unit: float  # datetimes: nanoseconds per unit of the distance

    def encode(self, values: pd.Series, reference: pd.Series) -> np.ndarray:
        kind = self.column.kind
        return (to_numbers(kind, values, unit="ns") - to_numbers(kind, reference, unit="ns")) / self.unit

    def absolute(self, distances: pd.Series, reference: pd.Series) -> np.ndarray:
        """The column's values as numbers (`to_numbers` in ns)."""
        steps = np.clip(pd.to_numeric(distances, errors="coerce").to_numpy(float), 0, None) * self.unit
        return to_numbers(self.column.kind, reference, unit="ns") + steps

    def decode(self, distances: pd.Series, reference: pd.Series) -> pd.Series:
        numbers = self.absolute(distances, reference)
        if self.column.kind != "datetime" and self.column.decimals is not None:
            numbers = np.round(numbers, self.column.decimals)
        return from_numbers(self.column.kind, self.column.dtype, self.column.name, numbers, unit="ns")

    def modelled(self) -> Column:
        decimals = 0 if self.column.kind == "datetime" else self.column.decimals
        return dataclasses.replace(self.column, kind="numerical", dtype="float64", decimals=decimals,
                                   datetime_format=None, reason=f"{self.column.reason}; held as the distance "
                                                                f"after {self.reference}")


def find_offset(column: Column, values: pd.Series, reference: Column, reference_values: pd.Series) -> Offset | None:
    """An Offset when `column` is never before `reference` in the real rows (and both hold dates or numbers)."""
    if column.kind != reference.kind or column.kind not in ORDERED_KINDS:
        return None
    differences = Offset(column, reference.name, 1.0).encode(values, reference_values)
    present = differences[np.isfinite(differences)]
    if present.size == 0 or present.min() < 0:
        return None
    return Offset(column, reference.name, time_unit(column.kind, present))
