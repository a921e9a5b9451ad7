"""Release policies: YAML files of rules `{metric, op, threshold}` that the gate evaluates."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Literal

import pydantic

from tabsynth.errors import PolicyError
from tabsynth.io.files import read_yaml

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


class Rule(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    metric: str
    op: Literal["<", "<=", ">", ">=", "=="]
    threshold: float
    why: str = ""

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)


class Policy(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    holdout_share: float = pydantic.Field(0.2, gt=0.0, lt=1.0)
    rules: tuple[Rule, ...] = pydantic.Field(min_length=1)


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
        raise PolicyError(*[f"policy {path.name}: {'.'.join(map(str, e['loc']))}: {e['msg']}"
                            for e in exc.errors()]) from None
