"""Mixed-type row encoding and exact nearest-neighbour search for the distance-based risk checks, and the
tables they share (`EncodedTables`: encoded and keyed once per validation, sampled by each check).

The encoding is Gower-like under the Euclidean norm: a number or date becomes its distance from the
training median divided by a robust training range (1st to 99th percentile), plus a missing
indicator; a category becomes a one-hot vector scaled by 1/sqrt(2), so that a mismatch adds 1 to the
squared distance, the same as two numbers a full range apart. Missing is a category of its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.table.infer import utc_nanoseconds
from tabsynth.table.schema import Column

MAX_CATEGORIES = 100  # rarer training categories share the 'other' slot with unseen ones
RANGE_QUANTILES = (0.01, 0.99)
ONE_HOT_SCALE = np.sqrt(0.5)
FAR = 1_000.0  # scaled numbers are clipped here: outliers stay far away and float32 products stay finite
CHUNK_CELLS = 8_000_000  # query rows x max(reference rows, k x features) per block: about 64 MB at most
PRE_ENCODED_CELLS = 16_000_000  # rows x features of a whole table encoded up front (128 MB); larger: per sample


@dataclass(frozen=True)
class NumberScale:
    """A number or date: (value - center) / spread, and 1 in a second feature when missing."""

    name: str
    center: float
    spread: float
    width = 2

    def encode(self, values: pd.Series) -> np.ndarray:
        numbers = as_numbers(values)
        missing = np.isnan(numbers)
        scaled = np.clip(np.where(missing, 0.0, (numbers - self.center) / self.spread), -FAR, FAR)
        return np.column_stack([scaled, missing.astype(float)])


@dataclass(frozen=True)
class CategoryScale:
    """A category: one-hot over the training categories, then 'other', then missing."""

    name: str
    categories: tuple

    @property
    def width(self) -> int:
        return len(self.categories) + 2

    def encode(self, values: pd.Series) -> np.ndarray:
        codes = pd.Index(self.categories, dtype=object).get_indexer(values.astype(object))
        codes[codes < 0] = len(self.categories)
        codes[values.isna().to_numpy()] = len(self.categories) + 1
        out = np.zeros((len(values), self.width))
        out[np.arange(len(values)), codes] = ONE_HOT_SCALE
        return out


@dataclass(frozen=True)
class RowEncoder:
    """Per-column scales learnt from the training table; `encode` turns any conformed table into features."""

    scales: tuple[NumberScale | CategoryScale, ...]

    @property
    def names(self) -> list[str]:
        return [scale.name for scale in self.scales]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.scales:
            return np.zeros((len(frame), 0))
        return np.hstack([scale.encode(frame[scale.name]) for scale in self.scales])

    def discrete(self) -> np.ndarray:
        """Mask of the features where a mismatch alone costs at least 1 in squared distance: a category's
        one-hot features and a number's missing flag."""
        widths = [[True] * scale.width if isinstance(scale, CategoryScale) else [False, True] for scale in self.scales]
        return np.array([flag for flags in widths for flag in flags], dtype=bool)

    def features(self, names: list[str]) -> np.ndarray:
        """Positions of the features that encode the named columns."""
        positions, start = [], 0
        for scale in self.scales:
            if scale.name in names:
                positions.extend(range(start, start + scale.width))
            start += scale.width
        return np.array(positions, dtype=np.int64)


def fit_encoder(train: pd.DataFrame, columns: list[Column]) -> RowEncoder:
    """Scales for the given modelled columns, read from the training rows."""
    return RowEncoder(tuple(_fit_scale(column, train[column.name]) for column in columns))


def _fit_scale(column: Column, values: pd.Series) -> NumberScale | CategoryScale:
    if column.kind in ("numerical", "datetime"):
        numbers = as_numbers(values)
        present = numbers[np.isfinite(numbers)]
        return NumberScale(column.name, *_center_and_spread(present))
    top = values.dropna().astype(object).value_counts().index[:MAX_CATEGORIES]
    return CategoryScale(column.name, tuple(top))


def _center_and_spread(present: np.ndarray) -> tuple[float, float]:
    if not len(present):
        return 0.0, 1.0
    low, high = np.quantile(present, RANGE_QUANTILES)
    spread = high - low if high > low else np.ptp(present)
    return float(np.median(present)), float(spread) if spread > 0 else 1.0


def as_numbers(values: pd.Series) -> np.ndarray:
    """Numbers as floats and dates as UTC nanoseconds; NaN where missing."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return utc_nanoseconds(values)
    return pd.to_numeric(values, errors="coerce").to_numpy(float)


def nearest_distances(queries: np.ndarray, reference: np.ndarray, k: int = 2, *,
                      discrete: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances and indices of the k closest reference rows of each query row, closest first.

    Candidates come from float32 matrix products in blocks of bounded size; their distances are then
    recomputed exactly in float64 (an identical row is at distance 0). Where the reference has fewer
    than k rows, the missing neighbours are at distance inf with index -1. Given `discrete` (a mask of
    the features where a mismatch alone costs at least 1 in squared distance, `RowEncoder.discrete`), a
    query whose k closest rows among those alike on every discrete feature are all nearer than 1 has
    them as its k nearest overall: those are found without the product (`_nearest_alike`).
    """
    distances = np.full((len(queries), k), np.inf)
    indices = np.full((len(queries), k), -1, dtype=np.int64)
    found = min(k, len(reference))
    if found == 0 or len(queries) == 0:
        return distances, indices
    used = (queries != 0).any(axis=0) | (reference != 0).any(axis=0)  # a feature 0 in both adds 0: left out
    queries, reference = queries[:, used], reference[:, used]
    rest = np.arange(len(queries))
    if discrete is not None and discrete[used].any():
        done, near, which = _nearest_alike(queries, reference, found, discrete[used])
        distances[done, :found], indices[done, :found] = near, which
        rest = np.flatnonzero(~done)
    distances[rest, :found], indices[rest, :found] = _nearest_by_products(queries[rest], reference, found)
    return distances, indices


def _nearest_by_products(queries: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    distances, indices = np.empty((len(queries), k)), np.empty((len(queries), k), dtype=np.int64)
    # argmin of |r|^2 - 2 q.r is the argmin of |q - r|^2: one product against [-2 r, |r|^2] gives it.
    augmented = np.hstack([-2 * reference, (reference**2).sum(axis=1, keepdims=True)]).T.astype(np.float32)
    step = max(1, CHUNK_CELLS // max(len(reference), k * queries.shape[1]))
    for start in range(0, len(queries), step):
        block = queries[start:start + step]
        scores = np.hstack([block, np.ones((len(block), 1))]).astype(np.float32) @ augmented
        candidates = _smallest(scores, k)
        exact = np.sqrt(((block[:, None, :] - reference[candidates]) ** 2).sum(axis=2))
        order = np.argsort(exact, axis=1, kind="stable")
        distances[start:start + step] = np.take_along_axis(exact, order, axis=1)
        indices[start:start + step] = np.take_along_axis(candidates, order, axis=1)
    return distances, indices


def _nearest_alike(queries: np.ndarray, reference: np.ndarray, k: int, discrete: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The queries (a mask) whose k nearest reference rows are found among the rows alike on every discrete
    feature, and those neighbours' distances and indices. Any other row differs on a discrete feature, so
    lies at least 1 away: neighbours alike and nearer than 1 are the nearest of all. Groups holding over
    1/16 of the reference are left to the product, which is then cheaper per pair."""
    query_groups, reference_groups = _group_codes(queries[:, discrete], reference[:, discrete])
    order = np.argsort(reference_groups, kind="stable")  # alike rows together, by index within a group
    starts = np.searchsorted(reference_groups[order], query_groups, "left")
    sizes = np.searchsorted(reference_groups[order], query_groups, "right") - starts
    tried = np.flatnonzero((sizes >= k) & (sizes <= max(k, len(reference) // 16)))
    done = np.zeros(len(queries), dtype=bool)
    distances, indices = np.empty((len(queries), k)), np.empty((len(queries), k), dtype=np.int64)
    pairs_per_block = max(1, CHUNK_CELLS // max(1, int((~discrete).sum())))
    for block in _blocks_of_pairs(tried, sizes, pairs_per_block):
        near, which = _nearest_in_groups(queries[block][:, ~discrete], reference[:, ~discrete], order,
                                         starts[block], sizes[block], k)
        closer = near[:, -1] ** 2 < 1 - 1e-9  # a row unlike the query is at least 1 away (squared)
        done[block[closer]] = True
        distances[block[closer]], indices[block[closer]] = near[closer], which[closer]
    return done, distances[done], indices[done]


def _group_codes(queries: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One integer per row: equal exactly where the rows are equal on every feature. Rows are compared as bytes:
    one bit per feature where each feature holds 0 or one other value (one-hot, flags), else the floats'."""
    rows = np.vstack([queries, reference]) + 0.0  # -0.0 becomes 0.0: equal values, equal bytes
    if np.all((rows == 0) | (rows == rows.max(axis=0))):
        rows = np.packbits(rows != 0, axis=1)
    rows = np.ascontiguousarray(rows)
    _, codes = np.unique(rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel(), return_inverse=True)
    return codes[:len(queries)], codes[len(queries):]


def _blocks_of_pairs(queries: np.ndarray, sizes: np.ndarray, pairs_per_block: int):
    """The query positions in runs whose pairs with their groups' rows stay within pairs_per_block."""
    ends = np.cumsum(sizes[queries])
    start = 0
    while start < len(queries):
        stop = max(start + 1, int(np.searchsorted(ends, ends[start] - sizes[queries[start]] + pairs_per_block,
                                                  "right")))
        yield queries[start:stop]
        start = stop


def _nearest_in_groups(queries: np.ndarray, reference: np.ndarray, order: np.ndarray, starts: np.ndarray,
                       sizes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of each query's k nearest rows within its group (order[start:start + size]),
    on the features given (the others are equal within a group); ties go to the lower index."""
    owner = np.repeat(np.arange(len(queries)), sizes)
    first = np.cumsum(sizes) - sizes
    rows = order[np.repeat(starts - first, sizes) + np.arange(len(owner))]
    gaps = ((queries[owner] - reference[rows]) ** 2).sum(axis=1)
    picks, distances = np.empty((len(queries), k), dtype=np.int64), np.empty((len(queries), k))
    for i in range(k):
        lowest = np.minimum.reduceat(gaps, first)
        hits = np.flatnonzero(gaps == lowest[owner])
        firsts = np.concatenate([[True], owner[hits][1:] != owner[hits][:-1]])
        picks[:, i] = hits[firsts]  # the first hit of each query: the lowest index among its ties
        distances[:, i] = np.sqrt(lowest)
        gaps[picks[:, i]] = np.inf
    return distances, rows[picks]


def _smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the k smallest scores of each row (k repeated argmins beat argpartition for small k)."""
    rows = np.arange(len(scores))
    picks = np.empty((len(scores), k), dtype=np.int64)
    for i in range(k):
        picks[:, i] = scores.argmin(axis=1)
        scores[rows, picks[:, i]] = np.inf
    return picks


def sample_rows(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most n rows drawn without replacement, in their original order."""
    positions = sample_positions(len(frame), n, rng)
    return frame if positions is None else frame.iloc[positions]


def sample_positions(size: int, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted positions of n of `size` rows drawn without replacement; None (all rows, no draw) when size <= n."""
    return None if size <= n else np.sort(rng.choice(size, n, replace=False))


def row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hashable key per row; missing values compare equal to each other, dtypes do not matter."""
    parts = [frame[c].astype(object).where(frame[c].notna(), "\x00NA").astype(str) for c in columns]
    if not parts:
        return pd.Series([""] * len(frame), index=frame.index)
    return pd.Series(map("\x1f".join, zip(*parts, strict=True)), index=frame.index)


@dataclass(frozen=True)
class Encoded:
    """Rows of a table beside their features and (on first use) their exact-match keys; row i of each is the
    same row. A whole table's features are computed up front only when they fit in PRE_ENCODED_CELLS (else
    None: each sample is encoded when drawn); a sample's always are."""

    rows: pd.DataFrame
    encoder: RowEncoder
    features: np.ndarray | None

    @functools.cached_property
    def keys(self) -> pd.Series:
        return row_keys(self.rows, self.encoder.names)

    def __len__(self) -> int:
        return len(self.rows)

    def sample(self, n: int, rng: np.random.Generator) -> Encoded:
        """At most n rows, drawn as `sample_rows` draws them (the same rows for the same generator)."""
        positions = sample_positions(len(self), n, rng)
        if positions is None:
            return self if self.features is not None else self.take(slice(None))
        return self.take(positions)

    def take(self, positions) -> Encoded:
        rows = self.rows.iloc[positions]
        features = self.encoder.encode(rows) if self.features is None else self.features[positions]
        taken = Encoded(rows, self.encoder, features)
        if "keys" in self.__dict__:  # already computed for the whole table: a slice of them
            taken.__dict__["keys"] = self.keys.iloc[positions]
        return taken

    def followed_by(self, other: Encoded) -> Encoded:
        """These rows, then those of `other` (both samples), renumbered from 0."""
        return Encoded(pd.concat([self.rows, other.rows], ignore_index=True), self.encoder,
                       np.vstack([self.features, other.features]))


@dataclass(frozen=True)
class EncodedTables:
    """The training, holdout and synthetic tables under one encoder learnt from the training rows: keyed and
    encoded once per validation, instead of once per risk check."""

    encoder: RowEncoder
    train: Encoded
    holdout: Encoded
    synthetic: Encoded


def encode_tables(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                  columns: list[Column]) -> EncodedTables:
    encoder = fit_encoder(train, columns)
    width = sum(scale.width for scale in encoder.scales)
    return EncodedTables(encoder, *(
        Encoded(frame, encoder, encoder.encode(frame) if len(frame) * width <= PRE_ENCODED_CELLS else None)
        for frame in (train, holdout, synthetic)))
