"""Conditions as token limits: which tokens of a column can meet a condition on it, and values that do.

A condition's top-level `and` parts that each name one column are met natively: the column's tokens are
restricted to those whose values can satisfy the part, and its value within a token is redrawn from values
known to satisfy it. Parts that tie several columns together (`a < b`, `a == 1 or b == 2`) are left over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.models.argn.encoding import ColumnTokens
from tabsynth.rules.conditions import And, Condition

DRAWS_PER_TOKEN = 64  # values decoded per token to learn whether it can meet a condition


@dataclass(frozen=True, eq=False)
class ColumnLimit:
    """A condition on one column: the token tuples that can meet it, and decoded values that do."""

    condition: Condition
    allowed: np.ndarray  # bool, shaped like the column's token sizes
    pool_keys: np.ndarray  # flat token tuple of each pooled value, sorted
    pool: pd.Series  # values that meet the condition

    def enforce(self, values: pd.Series, tokens: np.ndarray, rng: np.random.Generator) -> pd.Series:
        """Replace the values that miss the condition by pooled values of the same token tuple."""
        failing = np.flatnonzero(~self.condition.mask(values.to_frame()))
        if failing.size == 0:
            return values
        keys = np.ravel_multi_index(tuple(tokens[failing].T), self.allowed.shape)
        low = np.searchsorted(self.pool_keys, keys, side="left")
        high = np.searchsorted(self.pool_keys, keys, side="right")
        picks = low + np.floor(rng.random(len(keys)) * (high - low)).astype(np.int64)
        out = values.copy()
        out.iloc[failing] = self.pool.iloc[picks].to_numpy()
        return out


def split_condition(condition: Condition | None) -> tuple[dict[str, Condition], Condition | None]:
    """(one condition per column, the part that ties columns together or None)."""
    if condition is None:
        return {}, None
    parts = condition.parts if isinstance(condition, And) else (condition,)
    single: dict[str, list[Condition]] = {}
    rest = []
    for part in parts:
        if len(part.columns) == 1:
            single.setdefault(part.columns[0], []).append(part)
        else:
            rest.append(part)
    per_column = {name: found[0] if len(found) == 1 else And(tuple(found)) for name, found in single.items()}
    return per_column, (rest[0] if len(rest) == 1 else And(tuple(rest))) if rest else None


def column_limit(tokens: ColumnTokens, condition: Condition, rng: np.random.Generator,
                 draws: int = DRAWS_PER_TOKEN) -> ColumnLimit:
    """Decode `draws` values of every valid token tuple and keep those that meet `condition`."""
    valid = tokens.valid
    keys = np.repeat(np.flatnonzero(valid.ravel()), draws)
    values = tokens.decode(np.stack(np.unravel_index(keys, valid.shape), axis=1), rng)
    meets = np.asarray(condition.mask(values.to_frame()), dtype=bool)
    allowed = np.zeros(valid.size, dtype=bool)
    allowed[keys[meets]] = True
    if not allowed.any():
        raise InputError(f"condition {condition.text!r} cannot be met: the model holds no value of column "
                         f"{tokens.name!r} that satisfies it")
    return ColumnLimit(condition, allowed.reshape(valid.shape), keys[meets], values[meets].reset_index(drop=True))
