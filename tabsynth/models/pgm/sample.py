"""Forward sampling along a calibrated junction tree, vectorised over rows.

The root clique's cells are drawn jointly; then each child clique draws its new attributes given
the separator values already drawn. As in private-pgm's synthetic_data, counts are allocated by
rounding rather than drawn independently: each group of rows that shares a separator value gets
floor(n·p) rows per cell, and the leftover rows go to cells picked by systematic sampling on the
fractional parts (cell k is picked with probability frac_k). This keeps every conditional within
one row of its expected count, which removes most of the sampling noise of i.i.d. draws.
"""

from __future__ import annotations

import numpy as np

from tabsynth.models.pgm.domain import Clique, Domain
from tabsynth.models.pgm.tree import JunctionTree
from tabsynth.table.threads import map_in_threads

_MAX_CELLS = 1 << 22  # groups × cells allocated at once
CHUNK_ROWS = 1 << 18  # rows drawn at once (chunks run on several threads)


def sample_codes(domain: Domain, tree: JunctionTree, probabilities: list[np.ndarray], n: int,
                 rng: np.random.Generator) -> np.ndarray:
    """n rows of int64 codes, columns in domain order, from calibrated clique probabilities.

    Rows are drawn in chunks of CHUNK_ROWS, each with its own generator spawned from `rng` and its own rounded
    allocation (so a conditional count is within one row per chunk of its expectation). Chunks bound the
    temporaries (keys, sort orders) whatever n is, and run on several threads: the draws do not depend on the
    order chunks run in."""
    codes = np.zeros((len(domain), int(n)), dtype=np.int64)  # one row per attribute while drawing
    conditionals = _conditionals(domain, tree, probabilities)
    chunks = [codes[:, start:start + CHUNK_ROWS] for start in range(0, int(n), CHUNK_ROWS)]
    map_in_threads(lambda piece: _sample_chunk(*piece, domain, conditionals),
                   zip(chunks, rng.spawn(len(chunks)), strict=True))
    return codes.T  # rows x attributes; a transposed view, so each attribute's codes stay contiguous


def _conditionals(domain: Domain, tree: JunctionTree, probabilities: list[np.ndarray]) -> list[tuple]:
    """(separator, new attributes, weights of the new cells per separator cell) for the root, then each child."""
    steps = [((), tree.cliques[0], probabilities[0].reshape(1, -1))]
    for (_, child), separator in zip(tree.edges, tree.separators, strict=True):
        clique = tree.cliques[child]
        new = tuple(a for a in clique if a not in separator)
        if new:
            table = domain.reorder(probabilities[child], clique, separator + new).reshape(domain.size(separator), -1)
            steps.append((separator, new, table))
    return steps


def _sample_chunk(codes: np.ndarray, rng: np.random.Generator, domain: Domain, conditionals: list[tuple]) -> None:
    (_, root, weights), *children = conditionals
    cells = _allocate(weights, np.array([codes.shape[1]]), rng)[0]
    # Root cells in random row order; every later draw matches cells to rows at random within each group,
    # so the rows stay exchangeable and need no shuffle at the end.
    _write(codes, domain, root, rng.permutation(np.repeat(np.arange(cells.size), cells)))
    for separator, new, table in children:
        _write(codes, domain, new, _draw_given(table, _keys(codes, domain, separator), rng))


def _draw_given(table: np.ndarray, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cell of each row's conditional table[key] (rows of `table` are unnormalised)."""
    order = np.argsort(_with_random_ties(keys, table.shape[0], rng))  # by key; each group's rows in random order
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    cells = _allocate(table[sorted_keys[starts]], sizes, rng)
    drawn = np.empty(len(keys), dtype=np.int64)
    drawn[order] = np.repeat(np.tile(np.arange(table.shape[1]), len(sizes)), cells.ravel())
    return drawn


def _allocate(weights: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer counts per (group, cell), each group's summing to its size, by rounded allocation."""
    counts = np.empty(weights.shape, dtype=np.int64)
    step = max(1, _MAX_CELLS // weights.shape[1])
    for start in range(0, len(sizes), step):
        block = slice(start, start + step)
        counts[block] = _allocate_block(weights[block], sizes[block], rng)
    return counts


def _allocate_block(weights: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    totals = weights.sum(axis=1, keepdims=True)
    probs = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), 1.0 / weights.shape[1])
    expected = probs * sizes[:, None]
    whole = np.floor(expected)
    fractions = np.cumsum(expected - whole, axis=1)
    leftover = np.rint(sizes - whole.sum(axis=1))
    fractions *= (leftover / np.where(fractions[:, -1] > 0, fractions[:, -1], 1.0))[:, None]
    fractions[:, -1] = leftover
    picked = np.ceil(fractions - rng.random((len(sizes), 1)))  # systematic points u, u + 1, ... below each edge
    extra = np.diff(np.maximum(picked, 0.0), axis=1, prepend=0.0)
    return (whole + extra).astype(np.int64)


def _with_random_ties(keys: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Keys in [0, size) as int64 sort keys whose low bits are random: sorting them orders rows by key and
    each key's rows at random (ties left: about n^2 / 2^(bits+1) pairs), cheaper than a random permutation."""
    bits = 62 - int(size).bit_length()
    return (keys << bits) | rng.integers(0, 1 << bits, len(keys), dtype=np.int64)


def _keys(codes: np.ndarray, domain: Domain, attrs: Clique) -> np.ndarray:
    if not attrs:
        return np.zeros(codes.shape[1], dtype=np.int64)
    return np.ravel_multi_index(tuple(codes[domain.index(a)] for a in attrs), domain.shape(attrs))


def _write(codes: np.ndarray, domain: Domain, attrs: Clique, cells: np.ndarray) -> None:
    """Each attribute's code of the clique cells `cells`, by lookup (cheaper than dividing every row)."""
    if len(attrs) == 1:
        codes[domain.index(attrs[0])] = cells
        return
    shape = domain.shape(attrs)
    for a, lookup in zip(attrs, np.unravel_index(np.arange(domain.size(attrs)), shape), strict=True):
        np.take(lookup, cells, out=codes[domain.index(a)], mode="wrap")  # no buffer, no bounds check
