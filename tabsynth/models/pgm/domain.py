"""Named discrete attributes, and the named-axis array operations the model is built from.

Every table the engine keeps has its axes in domain order (`Domain.canonical`), so a table over a
subset of a clique broadcasts into the clique by a reshape, and projecting is a sum over axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tabsynth.errors import ModelError

Clique = tuple[str, ...]


@dataclass(frozen=True)
class Domain:
    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(str(name) for name in self.names))
        object.__setattr__(self, "sizes", tuple(int(size) for size in self.sizes))
        if len(self.names) != len(self.sizes) or len(set(self.names)) != len(self.names):
            raise ModelError("a domain needs one size per attribute and unique attribute names")
        if any(size < 1 for size in self.sizes):
            raise ModelError("every attribute of a domain needs at least one value")

    @classmethod
    def from_dict(cls, sizes: dict[str, int]) -> Domain:
        return cls(tuple(sizes), tuple(sizes.values()))

    @cached_property
    def _position(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return name in self._position

    def shape(self, attrs=None) -> tuple[int, ...]:
        attrs = self.names if attrs is None else attrs
        return tuple(self.sizes[self.index(name)] for name in attrs)

    def size(self, attrs=None) -> int:
        return math.prod(self.shape(attrs))

    def project(self, attrs) -> Domain:
        return Domain(tuple(attrs), self.shape(attrs))

    def index(self, name: str) -> int:
        try:
            return self._position[name]
        except KeyError:
            raise ModelError(f"attribute '{name}' is not in the model's domain") from None

    def canonical(self, attrs) -> Clique:
        """The attributes without repeats, in domain order."""
        return tuple(sorted(set(attrs), key=self.index))

    def expand(self, values: np.ndarray, attrs: Clique, target: Clique) -> np.ndarray:
        """View a table over canonical `attrs` so that it broadcasts against one over canonical `target`."""
        present = set(attrs)
        return values.reshape([self.sizes[self.index(name)] if name in present else 1 for name in target])

    def sum_to(self, values: np.ndarray, attrs: Clique, keep: Clique) -> np.ndarray:
        """Sum a table over canonical `attrs` down to the canonical subset `keep`."""
        kept = set(keep)
        return sum_out(values, tuple(i for i, name in enumerate(attrs) if name not in kept))

    def reorder(self, values: np.ndarray, attrs: Clique, order) -> np.ndarray:
        """Transpose a table over `attrs` so that its axes follow `order` (the same attributes)."""
        return values.transpose([attrs.index(name) for name in order])


def sum_out(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """`values.sum(axis=axes)`, several times faster: numpy's strided sums are slow over short axes.

    Neighbouring axes that are both kept or both summed are merged, then the last summed block is
    removed one at a time by an einsum over a 2-D or 3-D view (no BLAS, so no thread contention).
    """
    if not axes:
        return values
    kept_shape = tuple(n for i, n in enumerate(values.shape) if i not in axes)
    blocks: list[list] = []  # [size, summed] of runs of neighbouring axes
    for i, n in enumerate(values.shape):
        if blocks and blocks[-1][1] == (i in axes):
            blocks[-1][0] *= n
        else:
            blocks.append([n, i in axes])
    table = values
    while any(summed for _, summed in blocks):
        size, summed = blocks.pop()
        if summed:
            table = np.einsum("ij->i", table.reshape(-1, size), order="C")
            continue
        table = np.einsum("ijk->ik", table.reshape(-1, blocks.pop()[0], size), order="C")
        if blocks:
            blocks[-1][0] *= size
        else:
            blocks.append([size, False])
    return table.reshape(kept_shape)
