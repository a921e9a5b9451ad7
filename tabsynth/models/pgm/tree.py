"""Junction trees: triangulation and maximal cliques.

The graph has one vertex per attribute and an edge between attributes measured together. A greedy
elimination order (min-fill, or min-weight where that gives a smaller tree) triangulates it; the
cliques the order forms give the maximal cliques, and a maximum-weight spanning tree over their
separator sizes is a junction tree (running intersection holds for the cliques of a chordal graph).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import combinations

from tabsynth.models.pgm.domain import Clique, Domain


@dataclass(frozen=True)
class JunctionTree:
    """Maximal cliques (canonical attribute order) and tree edges (parent, child) in pre-order from clique 0."""

    cliques: tuple[Clique, ...]
    edges: tuple[tuple[int, int], ...]

    @cached_property
    def separators(self) -> tuple[Clique, ...]:
        return tuple(tuple(a for a in self.cliques[child] if a in self.cliques[parent]) for parent, child in self.edges)

    @cached_property
    def schedule(self) -> tuple[tuple[int, int, tuple[int, ...], tuple[int, ...]], ...]:
        """Per edge: parent, child, and the axes of each that are not in their separator."""
        plan = []
        for (parent, child), separator in zip(self.edges, self.separators, strict=True):
            parent_axes = _axes_outside(self.cliques[parent], separator)
            plan.append((parent, child, parent_axes, _axes_outside(self.cliques[child], separator)))
        return tuple(plan)

    def size(self, domain: Domain) -> int:
        return sum(domain.size(clique) for clique in self.cliques)

def build_tree(domain: Domain, cliques) -> JunctionTree:
    """The junction tree of the graph that `cliques` induce over every attribute of `domain`."""
    best = _triangulated(domain, _edges(domain, cliques))
    return JunctionTree(best, _spanning_tree(list(best)))

def junction_tree_size(domain: Domain, cliques: list[Clique]) -> int:
    """Total cells of the maximal cliques after triangulation: the model's size in numbers. AIM asks this of
    every candidate each round; candidates that add the same edges share one triangulation (cached)."""
    return sum(domain.size(clique) for clique in _triangulated(domain, _edges(domain, cliques)))

@lru_cache(maxsize=4096)
def _triangulated(domain: Domain, edges: frozenset[tuple[str, str]]) -> tuple[Clique, ...]:
    """The maximal cliques of the smaller of the min-fill and min-weight triangulations of the graph."""
    index = {name: i for i, name in enumerate(domain.names)}
    adjacency = [0] * len(domain)  # bit j of adjacency[i]: attributes i and j are joined
    for a, b in edges:
        adjacency[index[a]] |= 1 << index[b]
        adjacency[index[b]] |= 1 << index[a]
    candidates = [maximal_subsets([tuple(domain.names[i] for i in _bits(mask))
                                   for mask in _eliminate(domain.sizes, adjacency, weight_first)])
                  for weight_first in (False, True)]
    return tuple(min(candidates, key=lambda found: sum(domain.size(clique) for clique in found)))

def _edges(domain: Domain, cliques) -> frozenset[tuple[str, str]]:
    return frozenset(pair for clique in cliques for pair in combinations(domain.canonical(clique), 2))

def _eliminate(sizes: tuple[int, ...], adjacency: list[int], weight_first: bool) -> list[int]:
    """Eliminate greedily by fill-in then clique size (or size then fill-in), ties in domain order; the
    attribute mask of the clique each elimination forms."""
    adjacency = list(adjacency)
    remaining, formed = (1 << len(sizes)) - 1, []
    while remaining:
        best = None
        for vertex in _bits(remaining):
            neighbours = adjacency[vertex]
            # each neighbour's missing links to the other neighbours (its own bit is in the mask, not linked)
            fill = sum((neighbours & ~adjacency[a]).bit_count() - 1 for a in _bits(neighbours)) // 2
            weight = sizes[vertex] * math.prod(sizes[a] for a in _bits(neighbours))
            key = (weight, fill) if weight_first else (fill, weight)
            if best is None or key < best[0]:
                best = (key, vertex)
        vertex = best[1]
        neighbours = adjacency[vertex]
        for a in _bits(neighbours):
            adjacency[a] = (adjacency[a] | neighbours) & ~(1 << a) & ~(1 << vertex)
        remaining &= ~(1 << vertex)
        formed.append(neighbours | 1 << vertex)
    return formed

def _bits(mask: int):
    """Indices of the set bits, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low

def maximal_subsets(cliques: list[Clique]) -> list[Clique]:
    """The cliques that are not inside another, largest first."""
    unique = sorted(set(cliques), key=lambda clique: (-len(clique), clique))
    kept: list[Clique] = []
    for clique in unique:
        if not any(set(clique) <= set(other) for other in kept):
            kept.append(clique)
    return kept

def _spanning_tree(cliques: list[Clique]) -> tuple[tuple[int, int], ...]:
    """Kruskal on separator sizes, then edges oriented away from clique 0, in pre-order."""
    root_of = list(range(len(cliques)))

    def find(i: int) -> int:
        while root_of[i] != i:
            root_of[i] = root_of[root_of[i]]
            i = root_of[i]
        return i

    pairs = sorted(combinations(range(len(cliques)), 2), key=lambda p: -len(set(cliques[p[0]]) & set(cliques[p[1]])))
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(cliques))}
    for i, j in pairs:
        if find(i) != find(j):
            root_of[find(i)] = find(j)
            neighbours[i].append(j)
            neighbours[j].append(i)
    return _preorder_edges(neighbours)

def _preorder_edges(neighbours: dict[int, list[int]]) -> tuple[tuple[int, int], ...]:
    edges, stack, seen = [], [0], {0}
    while stack:
        parent = stack.pop()
        for child in sorted(neighbours[parent], reverse=True):
            if child not in seen:
                seen.add(child)
                edges.append((parent, child))
                stack.append(child)
    return tuple(edges)

def _axes_outside(clique: Clique, separator: Clique) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(clique) if name not in separator)
