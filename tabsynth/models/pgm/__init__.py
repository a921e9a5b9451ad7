"""Graphical-model inference for marginal-based synthesizers (AIM, MST): the post-processing half.

A lean numpy re-implementation of the ideas of private-pgm (McKenna et al. 2019): noisy marginals
in, a junction-tree model fitted by mirror descent out, with exact marginals and rounded sampling.
"""

from tabsynth.models.pgm.domain import Domain
from tabsynth.models.pgm.estimate import LinearMeasurement, estimate, measurement_loss, minimum_variance_total
from tabsynth.models.pgm.junction import GraphicalModel
from tabsynth.models.pgm.tree import JunctionTree, build_tree, junction_tree_size

__all__ = ["Domain", "GraphicalModel", "JunctionTree", "LinearMeasurement", "build_tree", "estimate",
           "junction_tree_size", "measurement_loss", "minimum_variance_total"]
