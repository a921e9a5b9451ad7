"""`--model auto`: which synthesizer a release fits, and what to try when a release is blocked.

The choice reads the policy's privacy requirements and rules, the options and, for a model that is not
differentially private, the table's size: nothing else of the table. A DP release always gets `dp-marginal`,
whatever the table holds, so the choice reveals nothing about the private rows. Otherwise `argn`, an
autoregressive network that keeps pairwise and predictive structure (on UCI Adult its train-synthetic-test-real
AUC is 0.916 against a real 0.929, the Gaussian copula's 0.842; benchmarks/results/default_model.md), when its
estimated fit fits the time budget; past it, `copula`, which fits any table in seconds.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from tabsynth.metrics import catalogue

AUTO = "auto"
DP_MODEL = "dp-marginal"
TIME_BUDGET_SECONDS = 300.0  # what a release may spend fitting on a CPU before auto settles for the copula
# argn predicts each column's tokens from the embeddings of all the others, so its work per row grows with the
# square of the modelled columns: about this many seconds per row, squared column and epoch on a busy 2-core
# machine (UCI Adult: 26,049 rows x 14 columns, 15 epochs in 59 s alone, twice that beside other jobs).
ARGN_SECONDS_PER_ROW_COLUMN2 = 1.5e-6
ARGN_MAX_COLUMNS = 100  # its memory per row grows with the square too: 60 rows x 2,000 columns needed 23 GB
ARGN_MIN_EPOCHS = 10  # fewer epochs than this in the budget: argn would stop before it has learnt the table
ARGN_MAX_EPOCHS = 100  # argn's own cap; its early stopping ends most fits after 10 to 20 epochs
ARGN_TYPICAL_EPOCHS = 20
# argn's default numeric resolution (100 coarse x 50 fine cells) overfits tables of a few thousand rows and loses
# rare classes' conditionals (ISLR Default: TSTR AUC 0.57); about 40 rows per fine cell keeps them (0.91-0.93).
ROWS_PER_COARSE_BIN = 400
MIN_BINS, MAX_BINS, SUB_BINS = 10, 100, 10
JOINT_METRICS = catalogue.JOINT  # rules that judge joint structure rather than single columns
DP_METRICS = frozenset(catalogue.DP)


@dataclass(frozen=True)
class Choice:
    name: str
    why: str
    params: dict = field(default_factory=dict)
    chosen_by: str = AUTO

    def record(self) -> dict:
        """What the manifest's model entry adds: who chose the model and why."""
        return {"chosen_by": self.chosen_by, "why": self.why}


def named(name: str) -> Choice:
    return Choice(name, f"named with --model {name}", chosen_by="user")


def wants_dp(*, require_dp: bool, rule_metrics: Collection[str], epsilon_given: bool, engine: str = "memory") -> bool:
    """Whether auto picks a DP model: decided by the policy and the options alone, before the table is read."""
    return require_dp or epsilon_given or engine == "duckdb" or bool(DP_METRICS & set(rule_metrics))


def choose_model(*, dp: bool, rows: int | None = None, columns: int | None = None,
                 rule_metrics: Collection[str] = (), engine: str = "memory",
                 seconds: float = TIME_BUDGET_SECONDS) -> Choice:
    """The model for a release; `dp` from `wants_dp`. `rows` and `columns` (modelled) are read for a non-DP
    choice only: a DP choice is the same for every table."""
    if dp:
        return Choice(DP_MODEL, _dp_reason(engine))
    if rows is None or columns is None:
        raise ValueError("a choice that is not DP needs the table's rows and modelled columns")
    per_epoch = max(rows, 1) * max(columns, 1) ** 2 * ARGN_SECONDS_PER_ROW_COLUMN2
    epochs = min(ARGN_MAX_EPOCHS, int(seconds // per_epoch))
    shape = f"{rows:,} rows x {columns} modelled columns"
    joint = sorted(JOINT_METRICS & set(rule_metrics))
    if epochs >= ARGN_MIN_EPOCHS and columns <= ARGN_MAX_COLUMNS:
        estimate = per_epoch * min(epochs, ARGN_TYPICAL_EPOCHS)
        checked = f" (the policy checks them: {', '.join(joint)})" if joint else ""
        return Choice("argn", f"argn keeps pairwise correlations and predictive signal, which the Gaussian copula "
                              f"loses{checked}; {shape} fit in about {estimate:.0f} s on a CPU (an estimate; "
                              f"budget {seconds:.0f} s)", argn_params(rows, epochs))
    warn = f"; the policy's rules on {', '.join(joint)} may block it (name --model argn to fit anyway)" if joint else ""
    too_big = (f"argn's memory grows with the square of the columns (at most {ARGN_MAX_COLUMNS} for auto)"
               if columns > ARGN_MAX_COLUMNS else f"argn would take about {per_epoch * ARGN_MIN_EPOCHS:.0f} s for "
               f"{ARGN_MIN_EPOCHS} epochs, past the {seconds:.0f} s budget")
    return Choice("copula", f"{shape}: {too_big}; the Gaussian copula fits in seconds and keeps each column's "
                            f"distribution and monotone pairwise dependence{warn}")


def argn_params(rows: int, epochs: int) -> dict:
    bins = min(MAX_BINS, max(MIN_BINS, rows // ROWS_PER_COARSE_BIN))
    return {"epochs": epochs, "bins": bins, "sub_bins": SUB_BINS}


def _dp_reason(engine: str) -> str:
    if engine == "duckdb":
        return f"the duckdb engine fits {DP_MODEL} only"
    return (f"the policy or the options ask for differential privacy; {DP_MODEL} is tabsynth's most accurate DP "
            "model on mixed tables (benchmarks/results/peers_quick.md); the choice reads nothing of the table")


# ---- what to try when the gate blocks ---------------------------------------------------------------------

PRIVACY_RISK_METRICS = frozenset(catalogue.PRIVACY_RISK)
MARGINAL_METRICS = frozenset(catalogue.MARGINAL)
CONSTRAINT_METRICS = frozenset(catalogue.CONSTRAINTS)
DP_MODELS = frozenset({"dp-marginal", "dp-argn", "dp-ctgan"})


def blocked_hints(failed_metrics: Collection[str], model: str | None) -> list[str]:
    """One line per family of failed rules: the models or declarations likely to pass it."""
    families = {_family(name) for name in failed_metrics} - {None}
    return [_HINTS[family](model) for family in _ORDER if family in families]


def _family(metric: str) -> str | None:
    base = metric.split(":", 1)[0]
    if base in JOINT_METRICS or base in MARGINAL_METRICS or base in ("tvd", "wasserstein") \
            or base.startswith("subgroup_"):
        return "fidelity"
    for family, names in (("privacy", PRIVACY_RISK_METRICS), ("constraints", CONSTRAINT_METRICS),
                          ("dp", DP_METRICS), ("pii", {"pii_leak"})):
        if base in names:
            return family
    return None


def _fidelity_hint(model: str | None) -> str:
    if model in DP_MODELS:
        return ("fidelity: a larger --epsilon (within the policy's cap) keeps more of the table; "
                "dp-marginal keeps most on tables of categories and binned numbers")
    if model == "argn":
        return "fidelity: try --model ctgan, or read the failing columns in the report (a schema fix may help)"
    return ("fidelity: try --model argn (an autoregressive network: keeps pairwise correlations and predictive "
            "signal; minutes on a CPU for 100,000 rows) or --model ctgan")


def _privacy_hint(model: str | None) -> str:
    more = "more rows (models memorise small tables)"
    if model in DP_MODELS:
        return f"privacy risk: a smaller --epsilon, or {more}"
    return (f"privacy risk: try a differentially private model (--model {DP_MODEL}), or {more}"
            + ("; fewer --param epochs memorise less" if model in ("argn", "ctgan", "tvae") else ""))


_HINTS = {
    "fidelity": _fidelity_hint,
    "privacy": _privacy_hint,
    "pii": lambda _: ("PII: the report names the column holding real values; declare it `kind: pii` in the schema "
                      "(--schema) so it is replaced by fakes"),
    "constraints": lambda _: ("constraints: the report lists each failed expectation; declare what rows must meet "
                              "(--constraints, or `declared:` facts in the schema) so sampling keeps only rows that "
                              "meet it, or correct a wrong schema fact"),
    "dp": lambda _: f"differential privacy: the policy needs a DP model (--model {DP_MODEL}, or --model auto)",
}
_ORDER = ("dp", "pii", "privacy", "constraints", "fidelity")
