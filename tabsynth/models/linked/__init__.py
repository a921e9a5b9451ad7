"""The linked model: persons and the rows that hang from them (see `synthesizer`); torch loads on first fit or
load."""

from tabsynth.models.linked.synthesizer import LinkedSynthesizer, load_linked

__all__ = ["LinkedSynthesizer", "load_linked"]
