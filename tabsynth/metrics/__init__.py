"""Checks on a synthetic table: pure functions `f(real, synthetic, schema, ...) -> MetricResult`."""

from tabsynth.metrics.result import MetricResult

__all__ = ["MetricResult"]
