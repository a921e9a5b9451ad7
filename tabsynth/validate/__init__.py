"""Checks on a synthetic table: pure functions `f(real, synthetic, schema, ...) -> MetricResult`."""

from tabsynth.validate.result import MetricResult

__all__ = ["MetricResult"]
