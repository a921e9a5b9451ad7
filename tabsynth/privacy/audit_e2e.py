"""Black-box DP audits of a whole release: neighbouring tables, many runs, attacker events, a bound on ε.

A release is run many times on a table D and on D' = D plus one distinctive row (the canary). An attacker who
sees the released output checks a few events declared before the runs (the released dtype, a missing value, a
category appearing, a value beyond a bound, the output equal to a reference). For an (ε, δ)-DP release every
event S obeys P_D'(S) ≤ e^ε P_D(S) + δ and the same with D and D' swapped, so Clopper–Pearson intervals on the
hit rates give a lower bound on ε that holds with the stated confidence, Bonferroni-corrected over the events.
A bound above the claimed ε proves the release (or its accounting) broken; a bound below it proves nothing.

The harness knows nothing of how a release is run: the caller passes `release(table) -> Outcome`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.privacy.audit import event_epsilon


@dataclass(frozen=True)
class Outcome:
    """What one release shows an attacker: the one-line refusal, or the released rows and manifest."""

    error: str | None = None
    data: pd.DataFrame | None = None
    manifest: Mapping | None = None


Event = Callable[[Outcome], bool]
Release = Callable[[pd.DataFrame], Outcome]


@dataclass(frozen=True)
class AuditResult:
    """Hit counts per event on each side, and the ε lower bound of each event and of the best one."""

    runs: int
    hits_without: Mapping[str, int]
    hits_with: Mapping[str, int]
    bounds: Mapping[str, float]
    confidence: float

    @property
    def epsilon_lower(self) -> float:
        return max(self.bounds.values())

    @property
    def best_event(self) -> str:
        """The event with the highest bound; among equals, the one whose hit counts differ most."""
        return max(self.bounds, key=lambda name: (self.bounds[name],
                                                  abs(self.hits_with[name] - self.hits_without[name])))


def audit_release(release: Release, without: pd.DataFrame, with_canary: pd.DataFrame, events: Mapping[str, Event],
                  runs: int, delta: float, confidence: float = 0.95) -> AuditResult:
    """`runs` releases of each table, counting every event; the bound of the best event, valid jointly."""
    if not events:
        raise ValueError("give at least one event")
    hits_without = count_events(release, without, events, runs)
    hits_with = count_events(release, with_canary, events, runs)
    alpha = (1.0 - confidence) / (4 * len(events))  # four one-sided intervals per event, union bound
    bounds = {name: event_epsilon(hits_without[name], hits_with[name], runs, delta, alpha) for name in events}
    return AuditResult(runs, hits_without, hits_with, bounds, confidence)


def count_events(release: Release, table: pd.DataFrame, events: Mapping[str, Event], runs: int) -> dict[str, int]:
    """How many of `runs` independent releases of `table` show each event."""
    hits = dict.fromkeys(events, 0)
    for _ in range(runs):
        outcome = release(table)
        for name, event in events.items():
            hits[name] += bool(event(outcome))
    return hits


# ---- attacker events ------------------------------------------------------------------------------------

def refused(outcome: Outcome) -> bool:
    return outcome.error is not None


def released_column(outcome: Outcome, column: str) -> pd.Series | None:
    if outcome.data is None or column not in outcome.data.columns:
        return None
    return outcome.data[column]


def float_column(column: str) -> Event:
    """The column was released with a floating-point dtype."""
    def event(outcome: Outcome) -> bool:
        values = released_column(outcome, column)
        return values is not None and pd.api.types.is_float_dtype(values.dtype)
    return event


def has_missing(column: str) -> Event:
    def event(outcome: Outcome) -> bool:
        values = released_column(outcome, column)
        return values is not None and bool(values.isna().any())
    return event


def non_integer(column: str) -> Event:
    """Some released value of the column is a number with a fractional part."""
    def event(outcome: Outcome) -> bool:
        values = released_column(outcome, column)
        if values is None or not pd.api.types.is_numeric_dtype(values.dtype):
            return False
        present = values.dropna().to_numpy(dtype=float)
        return bool(np.any(present != np.round(present)))
    return event


def category_appears(column: str, value) -> Event:
    def event(outcome: Outcome) -> bool:
        values = released_column(outcome, column)
        return values is not None and bool((values.astype(object) == value).any())
    return event


def beyond(column: str, bound: float) -> Event:
    """Some released value of the column exceeds `bound`."""
    def event(outcome: Outcome) -> bool:
        values = released_column(outcome, column)
        if values is None or not pd.api.types.is_numeric_dtype(values.dtype):
            return False
        return bool((values.dropna() > bound).any())
    return event


def row_count_is(rows: int) -> Event:
    def event(outcome: Outcome) -> bool:
        return outcome.data is not None and len(outcome.data) == rows
    return event


def digest(outcome: Outcome) -> str | None:
    """A fingerprint of the released rows (None for a refusal)."""
    if outcome.data is None:
        return None
    return hashlib.sha256(outcome.data.to_csv(index=False).encode()).hexdigest()


def same_output_as(reference: Outcome) -> Event:
    """The release is, row for row, the reference release (run once beforehand, outside the counted runs)."""
    expected = digest(reference)
    return lambda outcome: outcome.data is not None and digest(outcome) == expected


def same_row_count_as(reference: Outcome) -> Event:
    """The release has exactly as many rows as the reference release (a noisy count with its noise known)."""
    expected = None if reference.data is None else len(reference.data)
    return lambda outcome: outcome.data is not None and len(outcome.data) == expected
