"""New keys for synthetic rows: unique, and never equal to a real key of the same column.

The key space of each key column is chosen at fit time to miss every real key, and saved (as two numbers or a
text prefix, never the real keys), so a loaded model keeps that promise too."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.pii import unique_keys
from tabsynth.table.schema import Column
from tabsynth.table.values import as_dtype

INTEGER_KEYS = (10**9, 10**12)  # integer keys are drawn at random from this range, if no real key lies in it
HEX_WIDTH = 12  # text keys: a prefix, then this many uppercase hex characters


@dataclass(frozen=True)
class KeySpace:
    integer: bool
    low: int = 0
    high: int = 0
    prefix: str = ""

    def draw(self, column: Column, n: int, rng: np.random.Generator) -> pd.Series:
        """`n` distinct keys of the column's dtype."""
        if self.integer:
            keys = self.low + rng.choice(self.high - self.low, size=n, replace=False)
            return as_dtype(pd.Series(keys, name=column.name), column.dtype)
        keys = np.char.add(self.prefix, unique_keys(n, rng, integer=False, width=HEX_WIDTH).astype(str))
        return as_dtype(pd.Series(keys.astype(object), name=column.name), column.dtype)

    def state(self) -> dict:
        return dataclasses.asdict(self)


def key_space(column: Column, real: pd.Series) -> KeySpace:
    """Integers: 1e9 to 1e12 (or just above the largest real key, if a real key lies in that range; narrower for
    small integer dtypes); text: the first prefix that no real key of the generated length starts with."""
    dtype = pd.api.types.pandas_dtype(column.dtype)
    present = real.dropna()
    if pd.api.types.is_numeric_dtype(dtype):
        top = np.iinfo(dtype).max if pd.api.types.is_integer_dtype(dtype) else 2**53
        low, high = INTEGER_KEYS
        numbers = pd.to_numeric(present, errors="coerce").dropna()
        if ((numbers >= low) & (numbers < high)).any():
            low = int(numbers.max()) + 1
            high = low + INTEGER_KEYS[1]
        return KeySpace(True, min(low, top // 2), min(high, top))
    text = present.astype(str)
    for prefix in itertools.chain(("",), (f"S{i}" for i in itertools.count())):  # ends: the real keys are finite
        lengths = text.str.len() == len(prefix) + HEX_WIDTH
        if not (lengths & text.str.startswith(prefix)).any():
            return KeySpace(False, prefix=prefix)
    raise AssertionError("unreachable")
