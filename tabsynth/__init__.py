"""tabsynth: learn a table's schema, fit a generative model, validate, and release synthetic data behind a gate."""

__version__ = "0.1.0"
