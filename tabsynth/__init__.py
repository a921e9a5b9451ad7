"""tabsynth: learn a table's schema, fit a generative model, validate, and release synthetic data behind a gate.

    import tabsynth
    result = tabsynth.release(df, out="release", policy="default")   # gated: a ReleaseBlocked if it fails
    result.synthetic, result.verdict, result.report

The public API (`tabsynth.api`): `inspect`, `Synthesizer`, `release`, `validate`. It loads on first use, so
`import tabsynth` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabsynth._version import __version__ as __version__
from tabsynth.errors import BudgetExceededError, InputError, ReleaseBlocked, SchemaError, TabsynthError

if TYPE_CHECKING:
    from tabsynth.api import Release, Synthesizer, Verdict, inspect, release, validate

__all__ = ["BudgetExceededError", "InputError", "Release", "ReleaseBlocked", "SchemaError", "Synthesizer",
           "TabsynthError", "Verdict", "inspect", "release", "validate"]
_API = {"Release", "Synthesizer", "Verdict", "inspect", "release", "validate"}


def __getattr__(name: str):
    if name in _API:
        from tabsynth import api

        return getattr(api, name)
    raise AttributeError(f"module 'tabsynth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})
