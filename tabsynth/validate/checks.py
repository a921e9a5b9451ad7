"""Every check a release runs, in one call. A check that crashes becomes a failing result, never a crash:
the gate then blocks (fail closed) and the report says which check broke and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tabsynth.schema import Schema
from tabsynth.validate.result import MetricResult


@dataclass(frozen=True)
class CheckOptions:
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    constraints: tuple = ()
    constraint_facts: Schema | None = None  # the schema whose facts the synthetic rows must meet
    learn_combinations: bool = True  # False for DP releases: allowed combinations must be declared
    random_state: int = 0
    extra: list[MetricResult] = field(default_factory=list)


def run_checks(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
               options: CheckOptions) -> list[MetricResult]:
    """Privacy risk, utility and constraints on the modelled columns, plus any results computed upstream."""
    from tabsynth.validate.constraints import check_constraints
    from tabsynth.validate.risk import privacy_risks
    from tabsynth.validate.utility import utility_metrics

    rng = np.random.default_rng(options.random_state)
    facts = options.constraint_facts or schema
    checks: dict[str, Callable[[], list[MetricResult]]] = {
        "privacy risk": lambda: privacy_risks(train, holdout, synthetic, schema, rng=rng),
        "utility": lambda: utility_metrics(train, holdout, synthetic, schema, target=options.target,
                                           sensitive=options.sensitive, random_state=options.random_state),
        "constraints": lambda: check_constraints(synthetic, facts, list(options.constraints),
                                                 real=train if options.learn_combinations else None),
    }
    results = list(options.extra)
    for name, check in checks.items():
        results += run_one(name, check)
    return results


def run_one(name: str, check: Callable[[], list[MetricResult]]) -> list[MetricResult]:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - any failure of a check must block, not crash the release
        return [check_error(name, exc)]


def check_error(name: str, exc: BaseException) -> MetricResult:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return MetricResult(f"check_error:{name.replace(' ', '_')}", float("nan"), "min",
                        f"the {name} check failed to run", details={"error": f"{type(exc).__name__}: {message}"})
