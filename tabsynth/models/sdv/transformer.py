"""Encode a table as the float matrix CTGAN and TVAE learn from, and decode network output back.

Every modelled column becomes one or two spans of the row vector:
- discrete columns (categories, booleans, numbers with few values): a one-hot span, with a
  missing value as a category of its own;
- continuous columns (numbers, datetimes): the value's rank score v in [0, 1) is cut into
  `bins` equal bins, i.e. quantile bins of the column; a tanh span holds the position within
  the bin, then a one-hot span the bin, with one more category for a missing value (the
  one-hot span is left out when it would have a single category).

This is CTGAN's mode-specific normalisation with quantile bins for modes, where CTGAN fits a
Bayesian Gaussian mixture per column. Rank scores are quicker to fit and keep spikes such as
`capital-gain = 0` exactly. Decoding goes through each column's `Marginal`, which restores
dtypes, rounding, datetimes and bounds.
The state is the marginals' JSON and float arrays; nothing here is pickled.
`activate` turns raw network output into span values; `Conditions`, `RowsByCategory` and
`condition_loss` serve CTGAN's training conditioned on one category of one one-hot span.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from ctgan.data_transformer import SpanInfo

from tabsynth.models.marginals import Marginal, fit_marginal, to_uniform
from tabsynth.table.schema import Column, Schema

TANH, SOFTMAX = "tanh", "softmax"
_ABSENT = object()
MAX_KNOTS = 2000


@dataclass(frozen=True)
class TableEncoder:
    marginals: tuple[Marginal, ...]
    bins: int  # quantile bins per continuous column

    @property
    def spans(self) -> list[SpanInfo]:
        """Width and activation of each span, in row-vector order (ctgan's `SpanInfo`)."""
        return [span for marginal in self.marginals for span in _column_spans(marginal, self.bins)]

    @property
    def width(self) -> int:
        return sum(span.dim for span in self.spans)

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        """Network output (tanh values, one-hot or logit spans) to a table with the original dtypes."""
        columns, start = {}, 0
        for marginal in self.marginals:
            width = sum(span.dim for span in _column_spans(marginal, self.bins))
            scores = _uniform_scores(marginal, matrix[:, start:start + width], self.bins)
            columns[marginal.name] = marginal.decode(scores)
            start += width
        return pd.DataFrame(columns, index=range(len(matrix)))

    def pinned_category(self, fixed: dict) -> tuple[int, int] | None:
        """(number of the one-hot span, category) of the first discrete column that `fixed` pins to a known value."""
        number = 0
        for marginal in self.marginals:
            if marginal.categories is not None and fixed.get(marginal.name, _ABSENT) in marginal.categories:
                return number, marginal.categories.index(fixed[marginal.name])
            number += sum(span.activation_fn == SOFTMAX for span in _column_spans(marginal, self.bins))
        return None

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        metas, arrays = [], {}
        for i, marginal in enumerate(self.marginals):
            meta, marginal_arrays = marginal.state()
            metas.append(meta)
            arrays.update({f"m{i}.{key}": value for key, value in marginal_arrays.items()})
        return {"bins": self.bins, "marginals": metas}, arrays

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray]) -> TableEncoder:
        def arrays_of(i: int) -> dict[str, np.ndarray]:
            prefix = f"m{i}."
            return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}

        marginals = tuple(Marginal.from_state(meta, arrays_of(i)) for i, meta in enumerate(state["marginals"]))
        return cls(marginals, int(state["bins"]))


def fit_encoder(table: pd.DataFrame, schema: Schema, bins: int,
                rng: np.random.Generator) -> tuple[TableEncoder, np.ndarray]:
    """The encoder for the modelled columns of `table`, and the table encoded as a float32 matrix."""
    blocks, marginals = [], []
    for column in schema.modelled():
        values = table[column.name]
        marginal = _within_bounds(fit_marginal(column, values, MAX_KNOTS), column)
        marginals.append(marginal)
        blocks += _encode_column(marginal, column, values, bins, rng)
    matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(table), 0))
    return TableEncoder(tuple(marginals), bins), matrix.astype(np.float32)


@dataclass(frozen=True)
class Conditions:
    """Category counts of each one-hot span; CTGAN conditions its generator on one category of one span."""

    widths: np.ndarray  # categories in each one-hot span
    counts: np.ndarray  # (spans, widest span), zero-padded

    @classmethod
    def of(cls, matrix: np.ndarray, spans) -> Conditions:
        located = softmax_spans(spans)
        widths = np.array([span.dim for _, span in located], dtype=int)
        counts = np.zeros((len(widths), widths.max(initial=0)))
        for i, (start, span) in enumerate(located):
            counts[i, :span.dim] = matrix[:, start:start + span.dim].sum(axis=0)
        return cls(widths, counts)

    @property
    def dim(self) -> int:
        return int(self.widths.sum())

    def pin(self, n: int, span: int, category: int) -> np.ndarray:
        """The same condition for n rows: `category` of one-hot span number `span`."""
        cond = np.zeros((n, self.dim), dtype=np.float32)
        cond[:, self.widths[:span].sum() + category] = 1.0
        return cond

    def draw(self, n: int, rng: np.random.Generator, log_frequency: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One-hot conditions for n rows: a span drawn uniformly, then a category by (log) frequency."""
        cond = np.zeros((n, self.dim), dtype=np.float32)
        if not len(self.widths):
            return cond, np.zeros(n, int), np.zeros(n, int)
        cumulative = np.cumsum(np.log1p(self.counts) if log_frequency else self.counts, axis=1)
        cumulative /= cumulative[:, -1:]
        picked = rng.integers(len(self.widths), size=n)
        categories = (cumulative[picked] > rng.random(n)[:, None]).argmax(axis=1)
        offsets = np.cumsum(self.widths) - self.widths
        cond[np.arange(n), offsets[picked] + categories] = 1.0
        return cond, picked, categories


@dataclass(frozen=True)
class RowsByCategory:
    """Row numbers grouped by category for each one-hot span, to draw real rows that match a condition."""

    order: np.ndarray  # (spans, rows): row numbers sorted by category
    starts: np.ndarray  # (spans, widest span): where each category begins in `order`
    counts: np.ndarray

    @classmethod
    def of(cls, matrix: np.ndarray, spans) -> RowsByCategory:
        located = softmax_spans(spans)
        widest = max((span.dim for _, span in located), default=0)
        codes = [matrix[:, start:start + span.dim].argmax(axis=1) for start, span in located]
        order = np.array([np.argsort(c, kind="stable") for c in codes], np.int64).reshape(len(codes), len(matrix))
        counts = np.array([np.bincount(c, minlength=widest) for c in codes], np.int64).reshape(len(codes), widest)
        return cls(order, np.cumsum(counts, axis=1) - counts, counts)

    def draw(self, picked: np.ndarray, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not len(self.order):
            return rng.integers(self.order.shape[1], size=len(picked))
        offsets = (rng.random(len(picked)) * self.counts[picked, categories]).astype(np.int64)
        return self.order[picked, self.starts[picked, categories] + offsets]


def softmax_spans(spans: list[SpanInfo]) -> list[tuple[int, SpanInfo]]:
    """(start, span) of each one-hot span in the row vector."""
    starts = np.cumsum([0] + [span.dim for span in spans])[:-1]
    return [(int(start), span) for start, span in zip(starts, spans, strict=True) if span.activation_fn == SOFTMAX]


GUMBEL_TAU = 0.2  # ctgan's temperature for the Gumbel softmax of one-hot spans


@dataclass(frozen=True, eq=False)
class SpanLayout:
    """Index tensors that activate every span of a row vector at once, instead of span by span in Python.

    The softmax of each one-hot span is taken over all cells of all spans together: a cell's span number
    (`span_of_cell`) groups the maxima and sums; `order` puts tanh and one-hot values back in row-vector order.
    """

    tanh_columns: torch.Tensor  # columns of the tanh spans
    cell_columns: torch.Tensor  # columns of the one-hot cells
    span_of_cell: torch.Tensor  # the one-hot span (0, 1, ...) of each of those cells
    span_widths: torch.Tensor  # cells in each one-hot span
    first_cells: torch.Tensor  # where each one-hot span starts among the one-hot cells
    order: torch.Tensor  # output column j is value `order[j]` of [tanh values, one-hot values]

    @classmethod
    def of(cls, spans: list[SpanInfo], device: torch.device | str = "cpu") -> SpanLayout:
        located = softmax_spans(spans)
        starts = np.cumsum([0] + [span.dim for span in spans])[:-1]
        tanh = np.array([start for start, span in zip(starts, spans, strict=True) if span.activation_fn == TANH],
                        np.int64)
        cells = np.array([c for start, span in located for c in range(start, start + span.dim)], np.int64)
        span_of_cell = np.repeat(np.arange(len(located)), [span.dim for _, span in located]).astype(np.int64)
        widths = np.array([span.dim for _, span in located], np.int64)
        order = np.argsort(np.concatenate([tanh, cells]), kind="stable")
        arrays = (tanh, cells, span_of_cell, widths, np.cumsum(widths) - widths, order)
        return cls(*(torch.from_numpy(array).to(device) for array in arrays))

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Log-softmax of the one-hot cells' logits (rows, cells) within each span."""
        # each span's maximum only shifts its exponents into range, so it needs no gradient
        highest = torch.segment_reduce(logits.detach().T, "max", lengths=self.span_widths, axis=0).T
        shifted = logits - highest[:, self.span_of_cell]
        sums = shifted.new_zeros(len(logits), len(self.span_widths)).index_add(1, self.span_of_cell, shifted.exp())
        return shifted - torch.log(sums)[:, self.span_of_cell]


def activate(raw: torch.Tensor, layout: SpanLayout) -> torch.Tensor:
    """tanh on continuous spans, ctgan's Gumbel softmax (temperature 0.2) on one-hot spans."""
    if not len(layout.span_widths):
        return torch.tanh(raw)
    cells = raw[:, layout.cell_columns]
    gumbels = -torch.log(-torch.log(torch.rand_like(cells).clamp_(min=torch.finfo(cells.dtype).tiny)))
    noisy = (cells + gumbels) / GUMBEL_TAU
    soft = torch.exp(layout.log_softmax(noisy))
    return torch.cat([torch.tanh(raw[:, layout.tanh_columns]), soft], dim=1)[:, layout.order]


def condition_loss(raw: torch.Tensor, layout: SpanLayout, picked: torch.Tensor,
                   categories: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the generated span that was conditioned on (one-hot span number `picked`) and
    the condition's category, averaged over rows."""
    if not len(layout.span_widths):
        return raw.new_zeros(())
    log_probabilities = layout.log_softmax(raw[:, layout.cell_columns])
    rows = torch.arange(len(raw), device=raw.device)
    return -log_probabilities[rows, layout.first_cells[picked] + categories].mean()


def _column_spans(marginal: Marginal, bins: int) -> list[SpanInfo]:
    if marginal.categories is not None:
        return [SpanInfo(len(marginal.categories) + (marginal.missing > 0), SOFTMAX)]
    categories = bins + (marginal.missing > 0)
    return [SpanInfo(1, TANH)] + ([SpanInfo(categories, SOFTMAX)] if categories > 1 else [])


def _within_bounds(marginal: Marginal, column: Column) -> Marginal:
    """Clip continuous knots to the column's bounds, so decoded numbers stay inside them."""
    bounds = column.bounds()
    if marginal.knots is None or column.kind != "numerical":
        return marginal
    low = -np.inf if bounds.min is None else float(bounds.min)
    high = np.inf if bounds.max is None else float(bounds.max)
    return dataclasses.replace(marginal, knots=np.clip(marginal.knots, low, high))


def _encode_column(marginal: Marginal, column: Column, values: pd.Series, bins: int, rng) -> list[np.ndarray]:
    missing = values.isna().to_numpy()
    if marginal.categories is not None:
        lookup = {value: code for code, value in enumerate(marginal.categories)}
        codes = np.array([lookup.get(_plain(v), 0) for v in values.to_numpy(object)])
        codes[missing] = len(marginal.categories)
        return [_one_hot(codes, _column_spans(marginal, bins)[0].dim)]
    scores = to_uniform(column, values, rng)  # missing values take the lowest scores
    present = np.clip((scores - marginal.missing) / max(1.0 - marginal.missing, 1e-12), 0.0, 1.0 - 1e-9)
    codes = np.where(missing, bins, np.floor(present * bins)).astype(int)
    within = np.where(missing, 0.0, 2.0 * (present * bins - np.minimum(codes, bins - 1)) - 1.0)
    spans = _column_spans(marginal, bins)
    return [within[:, None]] + [_one_hot(codes, span.dim) for span in spans[1:]]


def _uniform_scores(marginal: Marginal, block: np.ndarray, bins: int) -> np.ndarray:
    """Scores in [0, 1) that `Marginal.decode` maps to the value each span encodes.

    A category decodes from the middle of its probability interval; missing from below `missing`.
    """
    keep = 1.0 - marginal.missing
    if marginal.categories is not None:
        codes = block.argmax(axis=1)
        cumulative = np.concatenate([[0.0], np.cumsum(marginal.probs)])
        middles = (cumulative[:-1] + cumulative[1:]) / 2
        is_missing = codes >= len(marginal.categories)
        present = marginal.missing + keep * middles[np.minimum(codes, len(middles) - 1)]
    else:
        codes = block[:, 1:].argmax(axis=1) if block.shape[1] > 1 else np.zeros(len(block), int)
        is_missing = codes == bins
        within = np.clip((block[:, 0] + 1.0) / 2.0, 0.0, 1.0 - 1e-9)
        present = marginal.missing + keep * (np.minimum(codes, bins - 1) + within) / bins
    return np.where(is_missing, marginal.missing / 2, present)


def _one_hot(codes: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(codes), width), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1.0
    return out


def _plain(value):
    return value.item() if hasattr(value, "item") else value
