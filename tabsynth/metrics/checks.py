"""Every check a release runs, in one call. A check that crashes becomes a failing result, never a crash:
the gate then blocks (fail closed) and the report says which check broke and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from tabsynth.metrics.result import MetricResult
from tabsynth.table.schema import Schema


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
    from tabsynth.metrics.constraints import check_constraints
    from tabsynth.metrics.pii_leak import pii_leak
    from tabsynth.metrics.risk import privacy_risks
    from tabsynth.metrics.utility import utility_metrics

    rng = np.random.default_rng(options.random_state)
    facts = options.constraint_facts or schema
    real = train if options.learn_combinations else None  # None: only declared facts and constraints (DP)

    def constraints() -> list[MetricResult]:
        found = check_constraints(synthetic, facts, list(options.constraints), real=real)
        return [replace(m, reads_private_rows=real is not None) for m in found]

    checks: dict[str, tuple[Callable[[], list[MetricResult]], bool]] = {  # name: (check, reads private rows)
        "privacy risk": (lambda: privacy_risks(train, holdout, synthetic, schema, rng=rng), True),
        "utility": (lambda: utility_metrics(train, holdout, synthetic, schema, target=options.target,
                                            sensitive=options.sensitive, random_state=options.random_state), True),
        "constraints": (constraints, real is not None),
        "pii leak": (lambda: pii_leak(train, holdout, synthetic, schema), True),
    }
    results = list(options.extra)
    for name, (check, private) in checks.items():
        results += run_one(name, check, reads_private_rows=private)
    return results


def run_one(name: str, check: Callable[[], list[MetricResult]], *,
            reads_private_rows: bool = True) -> list[MetricResult]:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - any failure of a check must block, not crash the release
        return [check_error(name, exc, reads_private_rows)]


def check_error(name: str, exc: BaseException, reads_private_rows: bool = True) -> MetricResult:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return MetricResult(f"check_error:{name.replace(' ', '_')}", float("nan"), "min",
                        f"the {name} check failed to run", reads_private_rows=reads_private_rows,
                        details={"error": f"{type(exc).__name__}: {message}"})
