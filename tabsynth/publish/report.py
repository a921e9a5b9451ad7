"""The HTML release report: one self-contained page a compliance reviewer reads and signs.

Everything the page needs is inside it (CSS inline, plots as base64 PNG), so it can be archived
and opened offline. Text from the data (column names, categories, policy text) is escaped by the
template's autoescape; category labels only ever appear inside the PNG images.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import jinja2
import pandas as pd

from tabsynth.io.atomic import atomic_write_text
from tabsynth.publish.class_view import class_rows, target_of
from tabsynth.publish.findings import HANDLING_WORDS, failed_rules, fmt, is_validation, verdict, warning_lines
from tabsynth.publish.findings import is_dp as _is_dp
from tabsynth.publish.findings import items as _items
from tabsynth.publish.findings import section as _section
from tabsynth.publish.plots import TOP_CATEGORIES, association_heatmaps, column_plot
from tabsynth.table.schema import Column, Schema

__all__ = ["fmt", "render_report", "with_assessment", "write_report"]
MAX_PLOTS = 40
MAX_HEATMAP_COLUMNS = 25
WITHHELD_HASH = "withheld: a DP release's shareable files never hash the private table (it would confirm a guess)"


def render_report(manifest: dict, real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
                  internal: dict | None = None) -> str:
    """Self-contained HTML (no external files or network: CSS inline, plots as base64 PNG <img>).

    Three views. A release that is not DP: everything, as an internal review copy. A DP release's shareable report
    (no `internal`): only DP or public figures, so no comparison with the real rows at all (a heading saying
    "internal only" would not stop a copied file from carrying them); the decision's basis is stated. A DP
    release's internal report (`internal`: its assessment): everything, under an INTERNAL REVIEW ONLY banner."""
    mode = "internal" if internal is not None else "shareable" if _is_dp(manifest) else "full"
    if mode == "internal":
        manifest = with_assessment(manifest, internal)
    if mode == "shareable":  # the manifest of a DP release holds no private-row check; never show one anyway
        schema = Schema.from_dict(schema.public())
        public = [m for m in _items(manifest, "metrics") if m.get("reads_private_rows") is False]
        manifest = {**manifest, "metrics": public}
    compared = mode != "shareable"
    plotted = [c for c in schema.modelled() if compared and c.name in real.columns and c.name in synthetic.columns]
    target = target_of(manifest, schema) if compared else None
    context = {
        "mode": mode,
        "validation": is_validation(manifest),
        "header": _header(manifest),
        "verdict": verdict(manifest, mode),
        "gate": gate_view(manifest),
        "failures": failed_rules(manifest),
        "warnings": warning_lines(manifest),
        "classes": class_rows(real, synthetic, schema, target) if target else None,
        "privacy": _privacy(manifest, schema),
        "fidelity": _fidelity(manifest, schema) if compared else None,
        "plots": [column_plot(c, real[c.name], synthetic[c.name]) for c in plotted[:MAX_PLOTS]],
        "plots_left_out": max(0, len(plotted) - MAX_PLOTS),
        "not_plotted": [c.name for c in schema.modelled() if compared and c not in plotted],
        "top_categories": TOP_CATEGORIES,
        "heatmap": association_heatmaps(real, synthetic, plotted[:MAX_HEATMAP_COLUMNS]),
        "schema_rows": [_schema_row(c) for c in schema.columns],
        "footer": _footer(manifest),
    }
    return _environment().get_template("report.html").render(**context)


def write_report(path: Path, manifest: dict, real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
                 internal: dict | None = None) -> None:
    atomic_write_text(Path(path), render_report(manifest, real, synthetic, schema, internal))


def with_assessment(manifest: dict, internal: dict) -> dict:
    """A DP release's manifest as its internal report reads it: the input's hash, the row counts and the timings
    back, the checks that read private rows among the metrics, and their rules' outcomes as the assessment."""
    model, timings = _section(manifest, "model"), _section(internal, "timings")
    if "fit_seconds" in timings:
        model = {**model, "fit_seconds": timings["fit_seconds"]}
    return {**manifest, "model": model, "input": _section(internal, "input") or _section(manifest, "input"),
            "split": _section(internal, "split") or _section(manifest, "split"),
            "metrics": _items(manifest, "metrics") + _items(internal, "metrics"),
            "assessment": _section(internal, "gate")}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("tabsynth", "publish/templates"), autoescape=True)


# ---------------------------------------------------------------- manifest sections

def _yes_no(value) -> str:
    return {True: "yes", False: "no"}.get(value, "not recorded")


def _header(manifest: dict) -> dict:
    inputs, split, model = _section(manifest, "input"), _section(manifest, "split"), _section(manifest, "model")
    released = manifest.get("released")
    words = {True: "PASSED", False: "FAILED"} if is_validation(manifest) else {True: "RELEASED", False: "BLOCKED"}
    return {
        "input_path": inputs.get("path", "not recorded"),
        "input_sha256": inputs.get("sha256") or (WITHHELD_HASH if _is_dp(manifest) else "not recorded"),
        "input_shape": f"{inputs['rows']} rows × {inputs['columns']} columns" if {"rows", "columns"} <= inputs.keys()
        else None,
        "created": manifest.get("created", "not recorded"),
        "model": model.get("name", "not recorded"),
        "model_params": ", ".join(f"{k}={v}" for k, v in _section(model, "params").items()),
        "fit_seconds": fmt(model["fit_seconds"]) if "fit_seconds" in model else None,
        "train_rows": split.get("train_rows"),
        "holdout_rows": split.get("holdout_rows"),
        "synthetic_rows": _section(manifest, "sampling").get("rows"),
        "validation_sample": _section(manifest, "validation_sample").get("note"),
        "version": manifest.get("tabsynth_version"),
        "synthetic_path": inputs.get("synthetic") if is_validation(manifest) else None,
        "released": words.get(released, "NOT RECORDED"),
        "released_class": {True: "pass", False: "fail"}.get(released, "unknown"),
    }


def gate_view(manifest: dict) -> dict:
    gate, policy = _section(manifest, "gate"), _section(manifest, "policy")
    metrics = {m.get("name"): m for m in _items(manifest, "metrics")}
    rules = [_rule_row(rule, metrics.get(rule.get("metric"), {})) for rule in _items(gate, "rules")]
    assessment = [_rule_row(rule, metrics.get(rule.get("metric"), {}))
                  for rule in _items(_section(manifest, "assessment"), "rules")]
    other = [_metric_row(m) for name, m in metrics.items() if not str(name).startswith("tvd:")]
    internal_rules = _section(gate, "internal_assessment_rules")
    return {"passed": gate.get("passed"), "rules": rules, "policy_name": policy.get("name"),
            "policy_description": policy.get("description"), "metrics": other, "basis": gate.get("basis"),
            "internal_rules": [str(r) for r in internal_rules.get("rules", []) if isinstance(r, str)],
            "internal_status": internal_rules.get("status", ""), "assessment": assessment,
            "internal_path": _section(manifest, "internal_assessment").get("path")}


def _rule_row(rule: dict, metric: dict) -> dict:
    passed = rule.get("passed")
    return {
        "metric": rule.get("metric", "?"),
        "value": fmt(rule.get("value")),
        "rule": f"{rule.get('op', '?')} {fmt(rule.get('threshold'))}",
        "verdict": "PASS" if passed is True else "FAIL",
        "reason": rule.get("reason") or "",
        "private": _yes_no(metric.get("reads_private_rows")),
    }


def _metric_row(metric: dict) -> dict:
    return {"name": metric.get("name", "?"), "value": fmt(metric.get("value")), "goal": metric.get("goal", ""),
            "description": metric.get("description", ""), "private": _yes_no(metric.get("reads_private_rows"))}


def _privacy(manifest: dict, schema: Schema) -> dict:
    seed, model = _section(manifest, "seed"), _section(manifest, "model")
    checked = _section(manifest, "checked").get("pii_columns", {})  # `validate`: what it checked, not how made
    pii = [{"name": c.name, "pii": c.pii or "unspecified",
            "handling": checked.get(c.name) or HANDLING_WORDS.get(c.handling, c.handling)}
           for c in schema.columns if c.kind == "pii"]
    private_checks = [m.get("name") for m in _items(manifest, "metrics") if m.get("reads_private_rows") is True]
    return {
        "seed_value": seed.get("value"),
        "seed_note": seed.get("note") or "no seed recorded",
        "reproducible": _yes_no(seed.get("reproducible")),
        "dp": _yes_no(model.get("differentially_private")),
        "budget": _budget(_section(manifest, "privacy")),
        "pii": pii,
        "ids": [c.name for c in schema.columns if c.kind == "id"],
        "ids_note": _section(manifest, "checked").get("key_note", "regenerated as new unique keys, unrelated to the "
                                                                    "real ones"),
        "private_checks": len(private_checks),
    }


def _budget(privacy: dict) -> dict | None:
    """ε/δ spent, how it was accounted, each measurement's noise scale, and the source's ledger balance."""
    if not privacy.get("differentially_private"):
        return None
    ledger = _section(privacy, "ledger")
    spent, cap = _section(ledger, "source_spent"), _section(ledger, "source_cap")
    measurements = [{"what": ", ".join(map(str, m.get("what", []))), "mechanism": m.get("mechanism", ""),
                     "scale": _noise_scale(m), "rho": fmt(m.get("rho"))} for m in _items(privacy, "measurements")]
    return {"epsilon": fmt(privacy.get("epsilon")), "delta": fmt(privacy.get("delta")),
            "accounting": privacy.get("accounting", "not recorded"), "measurements": measurements,
            "noise": _section(privacy, "noise").get("note", ""), "source": ledger.get("source"),
            "source_spent": f"ε {fmt(spent.get('epsilon'))}, δ {fmt(spent.get('delta'))}" if spent else None,
            "source_cap": f"ε {fmt(cap.get('epsilon'))}, δ {fmt(cap.get('delta'))}" if cap else None}


def _noise_scale(measurement: dict) -> str:
    for key, label in (("sigma", "σ"), ("noise_multiplier", "noise multiplier"), ("epsilon", "ε")):
        if key in measurement:
            return f"{label} = {fmt(measurement[key])}"
    return "n/a"


def _fidelity(manifest: dict, schema: Schema) -> dict:
    metrics = {m.get("name"): m.get("value") for m in _items(manifest, "metrics")}
    rows = [{"name": c.name, "kind": c.kind, "tvd": _number(metrics.get(f"tvd:{c.name}"))} for c in schema.modelled()]
    # A missing or broken distance sorts first: it is at least as worrying as a large one.
    rows.sort(key=lambda r: -math.inf if r["tvd"] is None else -r["tvd"])
    for row in rows:
        row["shown"] = fmt(row["tvd"])
        row["bar"] = 0 if row["tvd"] is None else round(100 * min(max(row["tvd"], 0.0), 1.0), 1)
    return {"rows": rows, "mean_column": fmt(metrics.get("mean_column_tvd")),
            "mean_pair": fmt(metrics.get("mean_pair_tvd"))}


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _schema_row(column: Column) -> dict:
    handling = f"{column.pii or 'unspecified'} → {column.handling}" if column.kind == "pii" else ""
    missing = "withheld" if column.missing is None else f"{column.missing:.1%}"
    return {"name": column.name, "kind": column.kind, "dtype": column.dtype, "missing": missing,
            "reason": column.reason, "pii": handling}


def _footer(manifest: dict) -> dict:
    outputs = [{"name": name, "sha256": info.get("sha256", "not recorded"), "rows": info.get("rows")}
               for name, info in _section(manifest, "outputs").items() if isinstance(info, dict)]
    return {"versions": _section(manifest, "versions"), "outputs": outputs}
