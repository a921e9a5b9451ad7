"""Synthesizers behind one protocol; see `base.REGISTRY`."""
