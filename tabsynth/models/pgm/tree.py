"""Junction trees: triangulation and maximal cliques.

The graph has one vertex per attribute and an edge between attributes measured together. A greedy
elimination order (min-fill, or min-weight where that gives a smaller tree) triangulates it; the
cliques the order forms give the maximal cliques, and a maximum-weight spanning tree over their
separator sizes is a junction tree (running intersection holds for the cliques of a chordal graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
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
    graph = _graph(domain, cliques)
    candidates = [maximal_subsets(_eliminate(domain, graph, key)) for key in (_min_fill, _min_weight)]
    best = min(candidates, key=lambda found: sum(domain.size(clique) for clique in found))
    return JunctionTree(tuple(best), _spanning_tree(best))

def junction_tree_size(domain: Domain, cliques: list[Clique]) -> int:
    """Total cells of the maximal cliques after triangulation: the model's size in numbers."""
    return build_tree(domain, cliques).size(domain)

def _graph(domain: Domain, cliques) -> dict[str, set[str]]:
    graph = {name: set() for name in domain.names}
    for clique in cliques:
        for a, b in combinations(domain.canonical(clique), 2):
            graph[a].add(b)
            graph[b].add(a)
    return graph

def _min_fill(domain: Domain, graph: dict[str, set[str]], vertex: str) -> tuple[int, int]:
    neighbours = graph[vertex]
    fill = sum(1 for a, b in combinations(neighbours, 2) if b not in graph[a])
    return fill, domain.size(neighbours | {vertex})

def _min_weight(domain: Domain, graph: dict[str, set[str]], vertex: str) -> tuple[int, int]:
    fill, weight = _min_fill(domain, graph, vertex)
    return weight, fill

def _eliminate(domain: Domain, graph: dict[str, set[str]], key) -> list[Clique]:
    """Eliminate greedily by `key` (ties in domain order); the clique each elimination forms."""
    graph = {vertex: set(neighbours) for vertex, neighbours in graph.items()}
    formed = []
    while graph:
        vertex = min(graph, key=lambda v: key(domain, graph, v))
        neighbours = graph.pop(vertex)
        for a in neighbours:
            graph[a] |= neighbours - {a}
            graph[a].discard(vertex)
        formed.append(domain.canonical(neighbours | {vertex}))
    return formed

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
