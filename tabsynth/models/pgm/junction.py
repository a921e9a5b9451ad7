"""Graphical models over a junction tree (`tabsynth.models.pgm.tree`): calibration in log space (or scaled
products), exact marginals, and sampling (`tabsynth.models.pgm.sample`)."""

from __future__ import annotations

import numpy as np

from tabsynth.errors import ModelError
from tabsynth.models.pgm.domain import Clique, Domain, sum_out
from tabsynth.models.pgm.sample import sample_codes
from tabsynth.models.pgm.tree import JunctionTree

UNDERFLOW = 1e-200  # scaled tables whose largest entry falls below this are taken to have underflowed
TINY = np.finfo(float).tiny  # the smallest normal float: its inverse is finite


def calibrate(tree: JunctionTree, potentials: list[np.ndarray]) -> list[np.ndarray]:
    """Clique marginals (probabilities) of the model p ∝ exp(Σ potentials), by two-pass message passing
    in log space (Hugin style: the downward pass divides the upward message out of the parent's belief)."""
    beliefs = [theta.astype(float, copy=True) for theta in potentials]
    upward = []
    for parent, child, parent_axes, child_axes in reversed(tree.schedule):
        message = _log_sum_exp(beliefs[child], child_axes)
        upward.append(message)
        beliefs[parent] += np.expand_dims(message, parent_axes)
    upward.reverse()
    for (parent, child, parent_axes, child_axes), message in zip(tree.schedule, upward, strict=True):
        beliefs[child] += np.expand_dims(_log_sum_exp(beliefs[parent], parent_axes) - message, child_axes)
    tables = [np.exp(belief - belief.max()) for belief in beliefs]
    return [table / table.sum() for table in tables]


def _log_sum_exp(log_table: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log Σ exp over `axes`, shifted per kept cell so that no slice underflows."""
    shift = log_table.max(axis=axes, keepdims=True)
    shift[~np.isfinite(shift)] = 0.0
    return np.log(sum_out(np.exp(log_table - shift), axes)) + np.squeeze(shift, axis=axes)


def calibrate_scaled(tree: JunctionTree, tables: list[np.ndarray]) -> list[np.ndarray] | None:
    """`calibrate` for potentials given as tables exp(θ_C − c_C), which it overwrites: unnormalised
    clique marginals, or None where a table underflows (the caller then uses `calibrate`).

    Products instead of log-sum-exps skip every exp and max over whole tables. Each table is a
    product of factors at most 1, so only entries below ~1e-308 are lost: negligible as long as
    every sum passed on stays above UNDERFLOW, which is checked.
    """
    upward = []
    for parent, child, parent_axes, child_axes in reversed(tree.schedule):
        message = _rescaled(sum_out(tables[child], child_axes))
        if message is None:
            return None
        upward.append(message)
        tables[parent] *= np.expand_dims(message, parent_axes)
    upward.reverse()
    for (parent, child, parent_axes, child_axes), message in zip(tree.schedule, upward, strict=True):
        down = sum_out(tables[parent], parent_axes)
        ratio = None if not down.max() > UNDERFLOW else _rescaled(
            np.divide(down, message, out=np.zeros_like(message), where=message > 0))
        if ratio is None:
            return None
        tables[child] *= np.expand_dims(ratio, child_axes)
    return tables


def _rescaled(message: np.ndarray) -> np.ndarray | None:
    peak = message.max()
    return message / peak if UNDERFLOW < peak < np.inf else None


class GraphicalModel:
    """A fitted model: p(x) ∝ exp(Σ_C θ_C(x_C)) over a junction tree, scaled to `total` records."""

    def __init__(self, domain: Domain, tree: JunctionTree, potentials: list[np.ndarray], total: float):
        self.domain, self.tree, self.total = domain, tree, float(total)
        self.potentials = [np.asarray(theta, dtype=float) for theta in potentials]
        self.probabilities = calibrate(tree, self.potentials)

    @property
    def cliques(self) -> list[Clique]:
        return list(self.tree.cliques)

    def marginal(self, attrs) -> np.ndarray:
        """Exact counts over `attrs` (axes in the order given), summing to `total`."""
        attrs = tuple(attrs)
        target = self.domain.canonical(attrs)
        if len(target) != len(attrs):
            raise ModelError(f"a marginal names an attribute twice: {attrs}")
        return self.total * self.domain.reorder(self._probability(target), target, attrs)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n rows of attribute codes (int64, columns in domain order)."""
        if n < 0:
            raise ModelError(f"cannot sample a negative number of rows ({n})")
        return sample_codes(self.domain, self.tree, self.probabilities, n, rng)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"names": list(self.domain.names), "sizes": list(self.domain.sizes), "total": self.total,
                "cliques": [list(clique) for clique in self.tree.cliques],
                "edges": [list(edge) for edge in self.tree.edges]}
        return meta, {f"potential_{i}": theta for i, theta in enumerate(self.potentials)}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> GraphicalModel:
        domain = Domain(tuple(meta["names"]), tuple(meta["sizes"]))
        tree = JunctionTree(tuple(tuple(clique) for clique in meta["cliques"]),
                            tuple((int(parent), int(child)) for parent, child in meta["edges"]))
        potentials = [np.asarray(arrays[f"potential_{i}"], dtype=float) for i in range(len(tree.cliques))]
        if any(theta.shape != domain.shape(clique) for theta, clique in zip(potentials, tree.cliques, strict=True)):
            raise ModelError("the saved graphical model does not match its own domain")
        return cls(domain, tree, potentials, float(meta["total"]))

    def _probability(self, target: Clique) -> np.ndarray:
        for clique, table in zip(self.tree.cliques, self.probabilities, strict=True):
            if set(target) <= set(clique):
                return self.domain.sum_to(table, clique, target)
        return self._variable_elimination(target, _covering_subtree(self.tree, target))

    def _variable_elimination(self, target: Clique, nodes: set[int]) -> np.ndarray:
        """p(target) = Σ p(C_top) Π_child p(C | S) over the subtree `nodes`, children first: each child
        sends the sum of its factors down to its separator and the target attributes it holds."""
        domain, cliques = self.domain, self.tree.cliques
        factors = {node: [(cliques[node], self.probabilities[node])] for node in nodes}
        inner = [(edge, separator) for edge, separator in zip(self.tree.edges, self.tree.separators, strict=True)
                 if edge[0] in nodes and edge[1] in nodes]
        for (parent, child), separator in reversed(inner):
            margin = domain.sum_to(self.probabilities[child], cliques[child], separator)
            # 1 / a subnormal margin overflows to inf (and inf · 0 to NaN); below TINY p(C | S) weighs nothing
            inverse = np.divide(1.0, margin, out=np.zeros_like(margin), where=margin > TINY)
            held = factors.pop(child) + [(separator, inverse)]
            keep = domain.canonical(a for attrs, _ in held for a in attrs if a in target or a in separator)
            factors[parent].append((keep, _contract(held, keep)))
        (held,) = factors.values()
        return _contract(held, target)


def _contract(factors: list[tuple[Clique, np.ndarray]], keep: Clique) -> np.ndarray:
    """Σ over everything but `keep` of the product of the factors, one pair at a time (no big products)."""
    attrs, table = factors[0]
    for position, (other_attrs, other) in enumerate(factors[1:], start=2):
        later = set(keep).union(*(names for names, _ in factors[position:]))
        out = tuple(dict.fromkeys(a for a in attrs + other_attrs if a in later))
        table, attrs = _einsum([(attrs, table), (other_attrs, other)], out), out
    return _einsum([(attrs, table)], keep)


def _einsum(factors: list[tuple[Clique, np.ndarray]], out: Clique) -> np.ndarray:
    """Sum of the product of named tables, down to the attributes `out` (in that order)."""
    letter = {name: i for i, name in enumerate(dict.fromkeys(a for attrs, _ in factors for a in attrs))}
    operands = [item for attrs, table in factors for item in (table, [letter[a] for a in attrs])]
    return np.einsum(*operands, [letter[a] for a in out], order="C")


def _covering_subtree(tree: JunctionTree, target: Clique) -> set[int]:
    """A smallest connected set of cliques that covers `target`: prune uncovering leaves."""
    neighbours = {i: set() for i in range(len(tree.cliques))}
    for parent, child in tree.edges:
        neighbours[parent].add(child)
        neighbours[child].add(parent)
    nodes = set(neighbours)

    def covers(kept: set[int]) -> bool:
        return set(target) <= {a for node in kept for a in tree.cliques[node]}

    pruned = True
    while pruned:
        pruned = False
        for node in sorted(nodes):
            if len(nodes) > 1 and len(neighbours[node] & nodes) <= 1 and covers(nodes - {node}):
                nodes.remove(node)
                pruned = True
    return nodes
