"""The gate: every rule of the policy evaluated at once; it fails closed.

For a differentially private release the gate is part of the guarantee: its decision reads only DP or public
inputs (the budget spent, and the synthetic rows checked against declared facts and constraints). Rules on checks
that read the private rows (copies, DCR, attacks, fidelity, utility) are still evaluated, but only as an internal
assessment that cannot change what is released: a decision that depended on them would be an unpaid release of
information about single rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tabsynth.metrics import catalogue
from tabsynth.metrics.result import MetricResult
from tabsynth.publish.policy import Policy, Rule


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


# The metrics that, in a DP release, are computed from DP or public inputs only: the budget the model spent, and
# the synthetic rows checked against the declared facts and constraints (the pipeline learns no combination from
# the real rows for a DP release). Every other metric reads the private train or holdout rows.
DP_DECISION_METRICS = catalogue.DP_DECISION
BASIS = {
    False: "every rule of the policy, on checks that read the private training and holdout rows",
    True: "only differentially private or public inputs: the privacy budget spent, and the synthetic rows checked "
          "against the declared schema facts and constraints. Checks that read the private rows (copies, "
          "distances, attacks, fidelity, utility) form an internal assessment (internal/assessment.json) that "
          "cannot change what is released",
}
INTERNAL_ONLY = "internal assessment, not part of the release decision"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    rules: tuple[RuleOutcome, ...]  # the outcomes that decide
    private: bool = False  # a DP release: decided on DP or public inputs only
    assessment: tuple[RuleOutcome, ...] = ()  # DP release: outcomes on private-row checks, internal only
    internal_rules: tuple[str, ...] = ()  # DP release: the policy's rules on private-row checks, as text

    def failures(self) -> list[RuleOutcome]:
        return [r for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        """The decision as the shareable manifest records it: for a DP release, no figure of a private-row check."""
        out = {"passed": self.passed, "basis": BASIS[self.private], "rules": [asdict(r) for r in self.rules]}
        if self.private:
            out["internal_assessment_rules"] = {"rules": list(self.internal_rules), "status": INTERNAL_ONLY}
        return out

    @classmethod
    def from_dict(cls, recorded: dict) -> Verdict:
        """The decision as a manifest recorded it (`to_dict`); a DP release's internal outcomes are not in it."""
        private = recorded.get("basis") == BASIS[True]
        internal = tuple(recorded.get("internal_assessment_rules", {}).get("rules", ()))
        return cls(passed=bool(recorded["passed"]), rules=tuple(RuleOutcome(**r) for r in recorded["rules"]),
                   private=private, internal_rules=internal)

    def assessment_dict(self) -> dict:
        """The private-row rules' outcomes, for the internal-only assessment file of a DP release."""
        return {"status": INTERNAL_ONLY, "passed": all(o.passed for o in self.assessment),
                "rules": [asdict(r) for r in self.assessment]}


def evaluate(policy: Policy, metrics: list[MetricResult], *, private: bool = False) -> Verdict:
    """Every rule, plus one failing outcome per check that crashed: an incomplete validation never passes.
    `private`: a DP release, whose decision uses only the rules on DP or public metrics."""
    by_name = {m.name: m for m in metrics}
    crashed = [m for m in metrics if "error" in m.details]
    if not private:
        outcomes = tuple(_judge(rule, by_name.get(rule.metric)) for rule in policy.rules)
        outcomes += tuple(_crashed(m) for m in crashed)
        return Verdict(passed=all(o.passed for o in outcomes), rules=outcomes)
    deciding = [rule for rule in policy.rules if rule.metric in DP_DECISION_METRICS]
    internal = [rule for rule in policy.rules if rule.metric not in DP_DECISION_METRICS]
    outcomes = tuple(_judge_public(rule, by_name.get(rule.metric)) for rule in deciding)
    outcomes += tuple(_crashed(m) for m in crashed if not m.reads_private_rows)
    assessment = tuple(_judge(rule, by_name.get(rule.metric)) for rule in internal)
    assessment += tuple(_crashed(m) for m in crashed if m.reads_private_rows)
    return Verdict(passed=all(o.passed for o in outcomes), rules=outcomes, private=True, assessment=assessment,
                   internal_rules=tuple(f"{r.metric} {r.op} {r.threshold:g}" for r in internal))


def _judge_public(rule: Rule, metric: MetricResult | None) -> RuleOutcome:
    """A deciding rule of a DP release; a metric that (against expectation) read private rows fails closed."""
    if metric is not None and metric.reads_private_rows:
        return RuleOutcome(metric=rule.metric, op=rule.op, threshold=rule.threshold, value=None, passed=False,
                           reason="computed from private rows, so it cannot decide a DP release (fails closed)")
    return _judge(rule, metric)


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
