"""What a run found, as sentences built from its manifest: each failed rule with what it found, the warnings a
reviewer should see, and a one-paragraph verdict a reviewer can sign. Every sentence comes from a manifest field
(or is left out when the field is absent); none is a standing claim. The report and the data card read these."""

from __future__ import annotations

import math

from tabsynth.metrics.pii_leak import leak_lines
from tabsynth.metrics.result import MetricResult

HANDLING_WORDS = {"fake": "replaced by fake values", "drop": "dropped from the release"}
NEIGHBOURS = "neighbouring tables differ by adding or removing one row"


# ---------------------------------------------------------------- reading the manifest without crashing

def section(data, key: str) -> dict:
    """A sub-dict of the manifest, or {} when absent or malformed: nothing here crashes on gaps."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def items(data, key: str) -> list[dict]:
    value = data.get(key) if isinstance(data, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def fmt(value) -> str:
    """A number to 4 significant digits; 'n/a' for missing or non-finite values."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value).lower()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4g}" if math.isfinite(number) else "n/a"


def is_dp(manifest: dict) -> bool:
    return section(manifest, "model").get("differentially_private") is True


def is_validation(manifest: dict) -> bool:
    return isinstance(manifest, dict) and manifest.get("kind") == "validation"


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def _names(names) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


# ---------------------------------------------------------------- failures, itemised

def failure_items(name: str, details: dict) -> list[str]:
    """What a failed metric found, one line per item: each failed constraint (rows failing it), each column
    holding real PII values (never the values)."""
    details = details if isinstance(details, dict) else {}
    if name == "pii_leak":
        return leak_lines(MetricResult(name, math.nan, "min", "", details=details))
    if name == "constraint_violations":
        return [constraint_line(e) for e in details.get("expectations", []) if isinstance(e, dict)
                and not e.get("passed")]
    return []


def constraint_line(expectation: dict) -> str:
    rows = expectation.get("unexpected_count")
    found = (f"{rows} row{'s' if rows != 1 else ''} fail" if rows else expectation.get("error")
             or (f"found {expectation['observed']}" if "observed" in expectation else "failed"))
    return f"constraint {expectation.get('rule', '?')}: {found}"


def rule_line(rule: dict) -> str:
    """A failed rule as the CLI words it: the value found, the threshold, and why the policy asks for it."""
    if rule.get("op") == "runs":
        return str(rule.get("reason") or f"{rule.get('metric', '?')} did not run")
    value = "no value" if rule.get("value") is None else fmt(rule.get("value"))
    why = f": {rule['reason']}" if rule.get("reason") else ""
    needs = f"{rule.get('op', '?')} {fmt(rule.get('threshold'))}"
    return f"{rule.get('metric', '?')} = {value}, policy requires {needs}{why}"


def failed_rules(manifest: dict) -> list[dict]:
    """Each failed rule of the gate (and of a DP release's internal assessment, when the manifest holds it), with
    what its metric found."""
    details = {m.get("name"): m.get("details") for m in items(manifest, "metrics")}
    found = []
    for where, rules in (("gate", items(section(manifest, "gate"), "rules")),
                         ("internal assessment", items(section(manifest, "assessment"), "rules"))):
        found += [{"where": where, "metric": str(rule.get("metric", "?")), "line": rule_line(rule),
                   "found": failure_items(rule.get("metric"), details.get(rule.get("metric")))}
                  for rule in rules if rule.get("passed") is not True]
    return found


# ---------------------------------------------------------------- warnings

def warning_lines(manifest: dict) -> list[str]:
    """What the run knows a reviewer should see: what a DP fit lost (from the model's privacy record), rows the
    sampler discarded, PII columns dropped, constraints failed that no rule blocks on."""
    recorded = manifest.get("warnings") if isinstance(manifest, dict) else None
    lines = [w if isinstance(w, str) else str(w.get("message", w))
             for w in (recorded if isinstance(recorded, list) else []) if isinstance(w, (str, dict))]
    return lines + _rejection_lines(manifest) + dropped_lines(manifest) + _unblocked_constraint_lines(manifest)


def _rejection_lines(manifest: dict) -> list[str]:
    sampling = section(manifest, "sampling")
    rejected, kept = sampling.get("rejected_by_constraints"), sampling.get("rows")
    if not isinstance(rejected, int) or rejected <= 0 or not isinstance(kept, int):
        return []
    share = rejected / (rejected + kept)
    return [f"{_plural(rejected, 'sampled row')} ({share:.1%} of the {rejected + kept:,} drawn) broke a schema fact "
            "or constraint and were discarded; the model makes such rows, and the released rows are the ones that "
            "met every rule"]


def dropped_lines(manifest: dict) -> list[str]:
    return [f"column {c.get('name')!r} ({c.get('pii') or 'personal data'}) was dropped as personal data: it is "
            "not in the released file" for c in _schema_columns(manifest) if c.get("kind") == "pii"
            and c.get("handling") == "drop"]


def _unblocked_constraint_lines(manifest: dict) -> list[str]:
    if any(rule.get("metric") == "constraint_violations" for rule in failed_rules(manifest)):
        return []  # itemised under the failed rule
    metric = next((m for m in items(manifest, "metrics") if m.get("name") == "constraint_violations"), {})
    return [f"{line} (no rule of the policy blocks on it)"
            for line in failure_items("constraint_violations", metric.get("details"))]


def _schema_columns(manifest: dict) -> list[dict]:
    return items(section(manifest, "schema"), "columns")


# ---------------------------------------------------------------- the verdict

def verdict(manifest: dict, mode: str) -> str:
    """One paragraph a reviewer can sign: what was released (or checked), by which model, under which policy,
    what passed or failed, the privacy guarantee or its absence, and what the reviewer must still check.
    `mode`: "full" (a release that is not DP), "shareable" or "internal" (a DP release's two reports)."""
    parts = [what_sentence(manifest), gate_sentence(manifest, mode), guarantee_sentence(manifest, mode),
             personal_data_sentence(manifest), to_check_sentence(manifest)]
    return " ".join(p for p in parts if p)


def what_sentence(manifest: dict, *, with_reason: bool = True) -> str:
    model, inputs = section(manifest, "model"), section(manifest, "input")
    if is_validation(manifest):
        return (f"The synthetic table {inputs.get('synthetic', '(not recorded)')}, made elsewhere, was checked "
                f"against the real table {inputs.get('path', '(not recorded)')}; a validation releases nothing.")
    name = model.get("name", "(not recorded)")
    chosen = f" (chosen automatically: {model['why']})" if with_reason and model.get("chosen_by") == "auto" \
        and model.get("why") else " (chosen automatically)" if model.get("chosen_by") == "auto" else ""
    data = [(n, o) for n, o in section(manifest, "outputs").items() if n.startswith("synthetic.")]
    rows = data[0][1].get("rows") if data and isinstance(data[0][1], dict) else section(manifest, "sampling").get(
        "rows")
    count = f"{rows:,} synthetic rows" if isinstance(rows, int) else "synthetic rows"
    if manifest.get("released") is True:
        where = f" in {data[0][0]}" if data else ""
        return f"This release holds {count}{where}, made by model {name}{chosen}."
    if manifest.get("released") is False:
        return f"Nothing was released: the gate blocked the {count} made by model {name}{chosen}."
    return f"Whether anything was released is not recorded; the model was {name}{chosen}."


def gate_sentence(manifest: dict, mode: str) -> str:
    gate, policy = section(manifest, "gate"), section(manifest, "policy").get("name", "(not recorded)")
    rules = items(gate, "rules")
    if not rules:
        return f"No rule of policy {policy} was recorded, so nothing was gated."
    failed = [str(r.get("metric", "?")) for r in rules if r.get("passed") is not True]
    outcome = (f"all {_plural(len(rules), 'rule')} passed" if not failed else
               f"{len(failed)} of {_plural(len(rules), 'rule')} failed ({_names(failed)})")
    if not is_dp(manifest):
        return f"Under policy {policy}, {outcome}."
    internal = [r for r in section(gate, "internal_assessment_rules").get("rules", []) if isinstance(r, str)]
    sentence = f"Under policy {policy}, the decision read only differentially private or public inputs: {outcome}."
    if internal and mode == "internal":
        assessed = items(section(manifest, "assessment"), "rules")
        missed = [str(r.get("metric", "?")) for r in assessed if r.get("passed") is not True]
        sentence += (f" The policy's {_plural(len(internal), 'rule')} on checks of the private rows did not decide "
                     f"it; in the internal assessment {len(missed)} of {len(assessed)} failed"
                     + (f" ({_names(missed)})." if missed else "."))
    elif internal:
        sentence += (f" The policy's {_plural(len(internal), 'rule')} on checks of the private rows did not decide "
                     "it; their outcomes are for internal review only.")
    return sentence


def guarantee_sentence(manifest: dict, mode: str) -> str:
    privacy = section(manifest, "privacy")
    if is_validation(manifest):
        return "Whether the synthetic table is differentially private is not known to tabsynth."
    if not is_dp(manifest):
        return "The model is not differentially private: no formal privacy guarantee applies; " + _protection(manifest)
    covered = {"internal": "; it does not cover the figures in this internal report, computed from the private rows",
               "shareable": ", and this report, whose figures are all differentially private or public"}.get(mode, "")
    return (f"The model is differentially private with ε = {fmt(privacy.get('epsilon'))} and "
            f"δ = {fmt(privacy.get('delta'))}, where {NEIGHBOURS} (the accounting is in the privacy summary); the "
            f"guarantee covers the synthetic rows and the model{covered}.")


def _protection(manifest: dict) -> str:
    private = {m.get("name") for m in items(manifest, "metrics") if m.get("reads_private_rows") is True}
    rules = sorted({str(r.get("metric")) for r in items(section(manifest, "gate"), "rules")
                    if r.get("metric") in private})
    if not rules:
        return "no rule of the gate compared the synthetic rows with the real ones."
    return f"the protection is the gate's rules on checks against the real rows ({_names(rules)})."


def personal_data_sentence(manifest: dict) -> str:
    columns = _schema_columns(manifest)
    pii = [f"{c.get('name')} ({HANDLING_WORDS.get(c.get('handling'), c.get('handling'))})"
           for c in columns if c.get("kind") == "pii"]
    keys = [str(c.get("name")) for c in columns if c.get("kind") == "id"]
    if is_validation(manifest):
        pii = [str(c.get("name")) for c in columns if c.get("kind") == "pii"]
        return (f"Columns treated as personal data: {_names(pii)}." if pii
                else "No column of the real table was detected or declared as personal data.")
    said = (f"Personal data columns: {_names(pii)}." if pii
            else "No column was detected or declared as personal data.")
    return said + (f" Key columns regenerated as new keys: {_names(keys)}." if keys else "")


def to_check_sentence(manifest: dict) -> str:
    """What tabsynth could not check, from what this run did."""
    todo = ["that the schema marks every column holding personal data (only the columns it marks are treated "
            "as personal data)"]
    declared = [name for name, record in section(section(manifest, "schema_facts"), "columns").items()
                if isinstance(record, dict) and str(record.get("facts", "")).startswith("declared")]
    if declared:
        todo.append(f"that the facts declared in the schema file for {_names(declared)} are public knowledge, not "
                    "read from the private table")
    if is_dp(manifest):
        todo.append(f"that ε = {fmt(section(manifest, 'privacy').get('epsilon'))} suits this data and its "
                    "recipients")
    elif not is_validation(manifest):
        todo.append("that a release without a formal privacy guarantee is acceptable for its recipients")
    if failed_rules(manifest):
        todo.append("each failed rule listed below")
    warnings = warning_lines(manifest)
    if warnings:
        todo.append(f"the {_plural(len(warnings), 'warning')} below")
    policy = section(manifest, "policy")
    required = (f" Policy {policy.get('name')} requires a reviewer's sign-off (tabsynth approve) before export."
                if policy.get("review_required") and manifest.get("released") is True else "")
    return f"The reviewer must still check {_names(todo)}.{required}"
