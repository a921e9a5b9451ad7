"""The gate: every rule of the policy evaluated at once; it fails closed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tabsynth.release.policy import Policy, Rule
from tabsynth.validate.result import MetricResult


@dataclass(frozen=True)
class RuleOutcome:
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    reason: str

    def line(self) -> str:
        if self.op == "runs":
            return self.reason
        shown = "no value" if self.value is None else f"{self.value:.4g}"
        return f"{self.metric} = {shown}, policy requires {self.op} {self.threshold:g}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    rules: tuple[RuleOutcome, ...]

    def failures(self) -> list[RuleOutcome]:
        return [r for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "rules": [asdict(r) for r in self.rules]}


def evaluate(policy: Policy, metrics: list[MetricResult]) -> Verdict:
    """Every rule, plus one failing outcome per check that crashed: an incomplete validation never passes."""
    by_name = {m.name: m for m in metrics}
    outcomes = tuple(_judge(rule, by_name.get(rule.metric)) for rule in policy.rules)
    outcomes += tuple(_crashed(m) for m in metrics if "error" in m.details)
    return Verdict(passed=all(o.passed for o in outcomes), rules=outcomes)


def _crashed(metric: MetricResult) -> RuleOutcome:
    return RuleOutcome(metric=metric.name, op="runs", threshold=0.0, value=None, passed=False,
                       reason=f"{metric.description} ({metric.details['error']}); fails closed")


def _judge(rule: Rule, metric: MetricResult | None) -> RuleOutcome:
    common = dict(metric=rule.metric, op=rule.op, threshold=rule.threshold)
    if metric is None:
        return RuleOutcome(**common, value=None, passed=False, reason="metric was not computed (fails closed)")
    if not metric.is_valid:
        return RuleOutcome(**common, value=None, passed=False, reason="metric is not a finite number (fails closed)")
    passed = rule.holds(metric.value)
    return RuleOutcome(**common, value=float(metric.value), passed=passed, reason="" if passed else rule.why)
