"""Conditional, valid and rebalanced sampling for any model with `sample(n, *, conditions=None, rng=None)`.

A model that declares `supports_conditions = True` is handed the condition (its rows are still
checked); every other model is sampled by bounded rejection: growing batches, keeping the rows
that pass, at most `max_draws` rows drawn in all. A condition too rare to meet within that bound
is an InputError naming it and its observed acceptance rate, never an endless loop. Rows are kept
in the order drawn, so a fixed seed gives the same table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.rules.conditions import Compare, Condition, IsNull, Or, column_text, parse_value
from tabsynth.rules.constraints import Constraint, compile_rules, rows_passing
from tabsynth.table.schema import Schema

MIN_BATCH = 1_000
MIN_DRAWS = 200_000
DRAWS_PER_ROW = 100  # default bound on draws: this many per requested row, at least MIN_DRAWS
HEADROOM = 1.2  # the next batch asks for this much more than the acceptance rate so far predicts


class _TooRare(Exception):
    def __init__(self, accepted: int, drawn: int):
        super().__init__(accepted, drawn)
        self.accepted, self.drawn = accepted, drawn


def sample_where(model, n: int, condition: Condition, rng=None, *, max_draws: int | None = None) -> pd.DataFrame:
    """`n` rows that satisfy `condition`."""
    rng = np.random.default_rng(rng)
    try:
        frame, _ = _rejection_sample(_drawer(model, condition, rng), condition.mask, n, _limit(n, max_draws))
    except _TooRare as rare:
        raise InputError(f"condition {condition.text!r} is too rare to meet: "
                         f"{rare.accepted:,} of {rare.drawn:,} sampled rows satisfied it") from None
    return frame


def sample_valid(model, n: int, schema: Schema, constraints: list[Constraint], rng=None,
                 real: pd.DataFrame | None = None, *, condition: Condition | None = None,
                 max_draws: int | None = None) -> tuple[pd.DataFrame, int]:
    """`n` rows meeting every row-level constraint (and `condition`, if given), and how many drawn rows failed."""
    rng = np.random.default_rng(rng)
    rules = compile_rules(schema, constraints, real)

    def accept(frame: pd.DataFrame) -> np.ndarray:
        passing = rows_passing(frame, rules)
        return passing & condition.mask(frame) if condition is not None else passing

    try:
        return _rejection_sample(_drawer(model, condition, rng), accept, n, _limit(n, max_draws))
    except _TooRare as rare:
        wanted = "rows meeting every constraint" + (f" and {condition.text!r}" if condition is not None else "")
        raise InputError(f"{wanted} are too rare: {rare.accepted:,} of {rare.drawn:,} sampled rows met them") from None


def rebalance(model, n: int, column: str, value: object, share: float, rng=None, *,
              max_draws: int | None = None) -> pd.DataFrame:
    """`round(n * share)` rows where `column == value`, the rest where it is not (or missing), shuffled.

    Each part is drawn conditionally, so the other columns keep their distributions given the column: by
    rejection from the model's own rows where the bound on draws allows, since the model's joint
    distribution restricted to the class is its best account of that class (a model's native conditioning
    may have seen a rare class in few training orders: argn's conditioned frauds looked like ordinary
    payments); natively only for a class too rare to reach within the bound.
    """
    if not 0.0 <= share <= 1.0:
        raise InputError(f"rebalance share for {column!r} must be between 0 and 1, got {share}")
    rng = np.random.default_rng(rng)
    hits = round(n * share)
    matching = Compare(column, "==", value)
    others = Or((Compare(column, "!=", value), IsNull(column)))
    parts = [_class_rows(model, hits, matching, rng, max_draws), _class_rows(model, n - hits, others, rng, max_draws)]
    return pd.concat(parts, ignore_index=True).iloc[rng.permutation(n)].reset_index(drop=True)


def _class_rows(model, n: int, condition: Condition, rng: np.random.Generator, max_draws: int | None
                ) -> pd.DataFrame:
    """`n` rows meeting `condition`, by rejection from unconditional rows, else natively (see `rebalance`)."""
    if getattr(model, "supports_conditions", False):  # without native conditions, sample_where rejects anyway
        try:
            return _rejection_sample(_drawer(model, None, rng), condition.mask, n, _limit(n, max_draws))[0]
        except _TooRare:
            pass  # too rare to reach by rejection within the bound: the model's own conditioning
    return sample_where(model, n, condition, rng, max_draws=max_draws)


def parse_rebalance(text: str) -> tuple[str, object, float]:
    """`"column=share"` (the column's true values) or `"column=value=share"`, e.g. `income='>50K'=0.5`."""
    head, _, share_text = text.rpartition("=")
    column, has_value, value_text = head.partition("=")
    column = column.strip().strip("`")
    if not column:
        raise InputError(f"rebalance {text!r}: write column=share or column=value=share, e.g. income='>50K'=0.3")
    try:
        share = float(share_text)
    except ValueError:
        raise InputError(f"rebalance {text!r}: the share {share_text.strip()!r} is not a number") from None
    if not 0.0 <= share <= 1.0:
        raise InputError(f"rebalance {text!r}: the share must be between 0 and 1, got {share}")
    value = parse_value(value_text) if has_value else True
    if value == "":
        raise InputError(f"rebalance {text!r}: no value for column {column_text(column)}")
    return column, value, share


def _drawer(model, condition: Condition | None, rng: np.random.Generator) -> Callable[[int], pd.DataFrame]:
    if condition is not None and getattr(model, "supports_conditions", False):
        return lambda size: model.sample(size, conditions=condition, rng=rng)
    return lambda size: model.sample(size, rng=rng)


def _limit(n: int, max_draws: int | None) -> int:
    return max(MIN_DRAWS, DRAWS_PER_ROW * n) if max_draws is None else max_draws


def _rejection_sample(draw: Callable[[int], pd.DataFrame], accept: Callable[[pd.DataFrame], np.ndarray],
                      n: int, max_draws: int) -> tuple[pd.DataFrame, int]:
    """The first `n` accepted rows, and how many drawn rows were rejected; `_TooRare` past `max_draws`."""
    if n <= 0:
        return draw(0), 0
    kept, drawn, accepted = [], 0, 0
    size = min(max(n, MIN_BATCH), max_draws)
    while True:
        frame = draw(size)
        passing = np.asarray(accept(frame), dtype=bool)
        kept.append(frame[passing])
        drawn, accepted = drawn + len(frame), accepted + int(passing.sum())
        if accepted >= n:
            return pd.concat([part for part in kept if len(part)], ignore_index=True).iloc[:n], drawn - accepted
        size = _next_batch(n - accepted, accepted, drawn, max_draws)


def _next_batch(missing: int, accepted: int, drawn: int, max_draws: int) -> int:
    """Rows to draw next, from the acceptance rate so far; `_TooRare` when the bound cannot be met."""
    if accepted == 0:
        if drawn >= max_draws:
            raise _TooRare(accepted, drawn)
        return min(4 * drawn, max_draws - drawn)
    expected = missing * drawn / accepted
    if drawn + expected > max_draws:
        raise _TooRare(accepted, drawn)
    return int(min(max(expected * HEADROOM, MIN_BATCH), max_draws - drawn))
