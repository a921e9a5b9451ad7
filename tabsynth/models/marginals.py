"""Empirical one-column marginals: map a column to uniform scores and back.

Any copula-style model needs this pair of maps. Categories and discrete numbers keep their exact
frequencies (a step quantile function); continuous numbers and datetimes interpolate between
quantile knots, so they stay within the observed range without copying single values. Missing
values are a point mass at the bottom of the unit interval. State is JSON plus float arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.table.infer import utc_nanoseconds
from tabsynth.table.schema import Column
from tabsynth.table.values import as_datetimes, as_dtype, take_categories

DEFAULT_KNOTS = 1000


@dataclass(frozen=True)
class Marginal:
    name: str
    kind: str
    dtype: str
    missing: float
    categories: tuple | None = None  # step marginal: the values ...
    probs: np.ndarray | None = None  # ... and their probabilities among present values
    knots: np.ndarray | None = None  # linear marginal: quantiles at evenly spaced levels
    decimals: int | None = None
    resolution_ns: int | None = None  # datetimes: round to whole days, seconds, ...
    tz: str | None = None

    def decode(self, u: np.ndarray) -> pd.Series:
        """Uniform scores in [0, 1) to column values with the column's dtype."""
        return self.to_series(self.draw(u))

    def draw(self, u: np.ndarray) -> np.ndarray:
        """Uniform scores to raw draws: category indices (-1 for missing) or numbers (NaN for missing).

        Split from `to_series` so that a sampler can draw in chunks and build each column once."""
        if self.categories is not None:
            return np.searchsorted(self.steps(), u, side="right") - 1
        v = np.clip((u - self.missing) / max(1.0 - self.missing, 1e-12), 0.0, 1.0 - 1e-12)
        drawn = _interpolate(self.knots, v)
        if self.decimals is not None:
            drawn = np.round(drawn, self.decimals)
        if self.resolution_ns:
            drawn = np.round(drawn / self.resolution_ns) * self.resolution_ns
        missing = u < self.missing
        if missing.any():
            drawn[missing] = np.nan
        return drawn

    def steps(self) -> np.ndarray:
        """Step marginals: the scores where each category starts (first: where missing values end), so that
        a score u draws category searchsorted(steps, u, side="right") - 1, and -1 is missing."""
        starts = np.cumsum(self.probs[:-1])
        return np.concatenate([[self.missing], self.missing + (1.0 - self.missing) * starts])

    def to_series(self, drawn: np.ndarray, categorical: bool = False) -> pd.Series:
        """Raw draws (from `draw`) as a column of the column's dtype (text as a Categorical with `categorical`)."""
        if self.categories is not None and self.kind != "datetime":
            return take_categories(self.categories, drawn, self.dtype, self.name, categorical)
        if self.categories is not None:  # a date column without a single present value
            drawn = np.full(len(drawn), np.nan)
        return _restore(pd.Series(drawn, name=self.name), self)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"name": self.name, "kind": self.kind, "dtype": self.dtype, "missing": self.missing,
                "categories": None if self.categories is None else list(self.categories),
                "decimals": self.decimals, "resolution_ns": self.resolution_ns, "tz": self.tz}
        arrays = {"probs": self.probs} if self.probs is not None else {"knots": self.knots}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> Marginal:
        categories = None if meta["categories"] is None else tuple(meta["categories"])
        return cls(name=meta["name"], kind=meta["kind"], dtype=meta["dtype"], missing=float(meta["missing"]),
                   categories=categories, probs=arrays.get("probs"), knots=arrays.get("knots"),
                   decimals=meta["decimals"], resolution_ns=meta["resolution_ns"], tz=meta["tz"])


def fit_marginal(column: Column, values: pd.Series, max_knots: int = DEFAULT_KNOTS) -> Marginal:
    missing = float(values.isna().mean())
    present = values.dropna()
    common = dict(name=column.name, kind=column.kind, dtype=column.dtype, missing=missing)
    if present.empty:
        return Marginal(**common, categories=(None,), probs=np.array([1.0]))
    if column.kind in ("categorical", "boolean") or (column.kind == "numerical" and column.discrete):
        counts = present.value_counts()
        categories = tuple(v.item() if hasattr(v, "item") else v for v in counts.index)
        return Marginal(**common, categories=categories, probs=(counts / counts.sum()).to_numpy(float))
    numbers, tz = _as_numbers(column, present)
    levels = np.linspace(0.0, 1.0, min(max_knots, len(numbers)))
    knots = np.quantile(numbers, levels)
    if column.kind == "datetime":
        return Marginal(**common, knots=knots, resolution_ns=_resolution_ns(numbers), tz=tz)
    return Marginal(**common, knots=knots, decimals=column.decimals)


def to_uniform(column: Column, values: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Mid-rank scores with random tie-breaking: ties spread uniformly over their probability mass."""
    order_key = _order_key(column, values)
    noise = rng.random(len(values))
    ranks = np.lexsort((noise, order_key))  # missing first, then by value, ties broken at random
    scores = np.empty(len(values))
    scores[ranks] = (np.arange(len(values)) + rng.random(len(values))) / len(values)
    return scores


def _order_key(column: Column, values: pd.Series) -> np.ndarray:
    if column.kind in ("categorical", "boolean") or (column.kind == "numerical" and column.discrete):
        counts = values.value_counts(dropna=True)
        codes = values.map({v: i for i, v in enumerate(counts.index)})
        return codes.fillna(-1).to_numpy(float)
    numbers = np.full(len(values), -np.inf)
    present = values.notna().to_numpy()
    numbers[present] = _as_numbers(column, values[present])[0]
    return numbers


def _as_numbers(column: Column, present: pd.Series) -> tuple[np.ndarray, str | None]:
    if column.kind == "datetime":
        tz = pd.to_datetime(present).dt.tz
        return utc_nanoseconds(present), None if tz is None else str(tz)
    numbers = pd.to_numeric(present, errors="coerce").to_numpy(float)
    finite = np.isfinite(numbers)
    if not finite.all():
        numbers = np.where(finite, numbers, np.nan)
        numbers = np.where(np.isnan(numbers), np.nanmedian(numbers), numbers)
    return numbers, None


def _restore(series: pd.Series, marginal: Marginal) -> pd.Series:
    if marginal.kind == "datetime":
        stamps = pd.Series(as_datetimes(pd.to_numeric(series, errors="coerce").to_numpy(float), "ns"), name=series.name)
        if marginal.tz is not None:
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(marginal.tz)
        return as_dtype(stamps, marginal.dtype)
    return as_dtype(series, marginal.dtype)


def _interpolate(knots: np.ndarray, v: np.ndarray) -> np.ndarray:
    """np.interp(v, linspace(0, 1, len(knots)), knots) without its binary search: the levels are evenly spaced."""
    if len(knots) == 1:
        return np.full(len(v), knots[0])
    position = v * (len(knots) - 1)
    below = np.minimum(position.astype(np.int64), len(knots) - 2)
    fraction = position - below
    if max(abs(knots[0]), abs(knots[-1])) <= np.finfo(float).max / 2:  # no difference of knots overflows
        return knots[below] + fraction * (knots[below + 1] - knots[below])
    return knots[below] * (1.0 - fraction) + knots[below + 1] * fraction


def _resolution_ns(numbers: np.ndarray) -> int:
    for unit in (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3):
        if np.all(np.mod(numbers, unit) == 0):
            return unit
    return 1
