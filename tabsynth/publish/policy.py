"""Release policies: YAML files of rules `{metric, op, threshold}` that the gate evaluates, plus the
privacy requirements (DP, ε caps, the ledger's per-source cap) and whether a reviewer must sign off."""

from __future__ import annotations

import difflib
import operator
from pathlib import Path
from typing import Literal

import pydantic

from tabsynth.errors import PolicyError
from tabsynth.io.files import read_yaml
from tabsynth.metrics import catalogue

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
# Utility scores named by the target's type since 0.x: a rule on the old name would compare R² with AUC.
RENAMED = {f"{score}_score": f"{score}_auc (binary or categorical target) or {score}_r2 (numerical target)"
           for score in catalogue.SCORES}


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    metric: str
    op: Literal["<", "<=", ">", ">=", "=="]
    threshold: float
    why: str = ""

    @pydantic.field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        if catalogue.is_metric(name):
            return name
        if name in RENAMED:
            raise ValueError(f"metric {name!r} is now named by the target's type: use {RENAMED[name]}")
        guess = difflib.get_close_matches(name, catalogue.METRICS, n=1)
        raise ValueError(f"unknown metric {name!r}" + (f" (did you mean {guess[0]!r}?)" if guess else ""))

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)


class Privacy(_Strict):
    """What the policy demands of the model, and the ledger's cap for the source table across releases."""

    require_dp: bool = False
    max_epsilon: float | None = pydantic.Field(None, gt=0)
    max_delta: float | None = pydantic.Field(None, gt=0, lt=1)
    source_epsilon_cap: float = pydantic.Field(10.0, gt=0)
    source_delta_cap: float = pydantic.Field(1e-5, gt=0, lt=1)


class Review(_Strict):
    required: bool = False


class Policy(_Strict):
    name: str
    description: str = ""
    holdout_share: float = pydantic.Field(0.2, gt=0.0, lt=1.0)
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    privacy: Privacy = Privacy()
    review: Review = Review()
    rules: tuple[Rule, ...] = pydantic.Field(min_length=1)


def target_metric_problems(policy: Policy, target: str | None, target_kind: str | None) -> list[str]:
    """One line per rule whose metric does not fit the target: an AUC needs classes, an R² needs numbers."""
    if target is None or target_kind is None:
        return []
    numerical = target_kind == "numerical"
    wrong, needs = ((catalogue.CLASSIFICATION, "a binary or categorical target") if numerical
                    else (catalogue.REGRESSION, "a numerical target"))
    return [f"policy {policy.name!r}: rule {rule.metric} {rule.op} {rule.threshold:g} needs {needs}, but target "
            f"{target!r} is {target_kind} (its scores are the *_{'r2' if numerical else 'auc'} metrics)"
            for rule in policy.rules if rule.metric in wrong]


def available_policies() -> list[str]:
    return sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))


def load_policy(name_or_path: str | Path) -> Policy:
    """A policy by name (a file in policies/) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = POLICY_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise PolicyError(f"unknown policy {str(name_or_path)!r}; choose one of: {', '.join(available_policies())}"
                              " or give a path to a .yaml file")
    data = read_yaml(path, "policy", PolicyError)
    try:
        return Policy.model_validate(data)
    except pydantic.ValidationError as exc:
        raise PolicyError(*[_error_line(path, e) for e in exc.errors()]) from None


def _error_line(path: Path, error: dict) -> str:
    where = ".".join(map(str, error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    return f"policy {path.name}: {where}: {message}"
