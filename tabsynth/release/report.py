"""The HTML release report: one self-contained page a compliance reviewer reads and signs.

Everything the page needs is inside it (CSS inline, plots as base64 PNG), so it can be archived
and opened offline. Text from the data (column names, categories, policy text) is escaped by the
template's autoescape; category labels only ever appear inside the PNG images.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from tabsynth.infer import utc_nanoseconds
from tabsynth.io.atomic import atomic_write_text
from tabsynth.schema import Column, Schema
from tabsynth.validate.fidelity import association_matrix

NANOSECONDS_PER_DAY = 86_400 * 10**9
MAX_PLOTS = 40
MAX_HEATMAP_COLUMNS = 25
TOP_CATEGORIES = 15
MAX_HIST_BINS = 30
FIGSIZE = (4.0, 2.6)
DPI = 80
REAL_COLOR, SYNTH_COLOR = "#2b6cb0", "#dd6b20"
HANDLING_WORDS = {"fake": "replaced by fake values", "drop": "dropped from the release"}


@dataclass(frozen=True)
class Plot:
    column: str
    kind: str
    png: str  # base64
    missing: str = ""  # histograms leave missing values out, so the caption states their share


def render_report(manifest: dict, real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> str:
    """Self-contained HTML (no external files or network: CSS inline, plots as base64 PNG <img>)."""
    plotted = [c for c in schema.modelled() if c.name in real.columns and c.name in synthetic.columns]
    context = {
        "header": _header(manifest),
        "gate": _gate(manifest),
        "privacy": _privacy(manifest, schema),
        "fidelity": _fidelity(manifest, schema),
        "plots": [_column_plot(c, real[c.name], synthetic[c.name]) for c in plotted[:MAX_PLOTS]],
        "plots_left_out": max(0, len(plotted) - MAX_PLOTS),
        "not_plotted": [c.name for c in schema.modelled() if c not in plotted],
        "top_categories": TOP_CATEGORIES,
        "heatmap": association_heatmaps(real, synthetic, plotted[:MAX_HEATMAP_COLUMNS]),
        "schema_rows": [_schema_row(c) for c in schema.columns],
        "footer": _footer(manifest),
    }
    return _environment().get_template("report.html").render(**context)


def write_report(path: Path, manifest: dict, real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> None:
    atomic_write_text(Path(path), render_report(manifest, real, synthetic, schema))


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("tabsynth", "release/templates"), autoescape=True)


# ---------------------------------------------------------------- manifest sections

def _section(data, key: str) -> dict:
    """A sub-dict of the manifest, or {} when absent or malformed: the report never crashes on gaps."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _items(data, key: str) -> list[dict]:
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


def _yes_no(value) -> str:
    return {True: "yes", False: "no"}.get(value, "not recorded")


def _header(manifest: dict) -> dict:
    inputs, split, model = _section(manifest, "input"), _section(manifest, "split"), _section(manifest, "model")
    released = manifest.get("released")
    return {
        "input_path": inputs.get("path", "not recorded"),
        "input_sha256": inputs.get("sha256", "not recorded"),
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
        "released": {True: "RELEASED", False: "BLOCKED"}.get(released, "NOT RECORDED"),
        "released_class": {True: "pass", False: "fail"}.get(released, "unknown"),
    }


def _gate(manifest: dict) -> dict:
    gate, policy = _section(manifest, "gate"), _section(manifest, "policy")
    metrics = {m.get("name"): m for m in _items(manifest, "metrics")}
    rules = [_rule_row(rule, metrics.get(rule.get("metric"), {})) for rule in _items(gate, "rules")]
    other = [_metric_row(m) for name, m in metrics.items() if not str(name).startswith("tvd:")]
    return {"passed": gate.get("passed"), "rules": rules, "policy_name": policy.get("name"),
            "policy_description": policy.get("description"), "metrics": other}


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
    pii = [{"name": c.name, "pii": c.pii or "unspecified", "handling": HANDLING_WORDS.get(c.handling, c.handling)}
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


# ---------------------------------------------------------------- plots

def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _new_axes(figsize=FIGSIZE):
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _column_plot(column: Column, real: pd.Series, synthetic: pd.Series) -> Plot:
    fig, ax = _new_axes()
    if column.kind not in ("numerical", "datetime"):
        _category_bars(ax, real, synthetic)
        return Plot(column.name, column.kind, _png(fig))
    _histogram(ax, column, real, synthetic)
    missing = ""
    if real.isna().any() or synthetic.isna().any():
        missing = f"missing: real {real.isna().mean():.1%}, synthetic {synthetic.isna().mean():.1%}"
    return Plot(column.name, column.kind, _png(fig), missing)


def as_numbers(values: pd.Series, kind: str) -> np.ndarray:
    """Floats for plotting: datetimes become days since 1970 (matplotlib's date numbers), in UTC."""
    if kind == "datetime":
        return utc_nanoseconds(values) / NANOSECONDS_PER_DAY
    return pd.to_numeric(values, errors="coerce").to_numpy(float)


def _histogram(ax, column: Column, real: pd.Series, synthetic: pd.Series) -> None:
    real_num, synth_num = as_numbers(real, column.kind), as_numbers(synthetic, column.kind)
    real_num, synth_num = real_num[np.isfinite(real_num)], synth_num[np.isfinite(synth_num)]
    if not len(real_num):
        ax.text(0.5, 0.5, "no real values", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        return
    with np.errstate(over="ignore"):
        overflows = not np.isfinite(real_num.max() - real_num.min())
    if overflows:  # a range wider than float64 holds (values near ±1.8e308): draw in units of the largest value
        scale = np.abs(real_num).max()
        real_num, synth_num = real_num / scale, synth_num / scale
        ax.set_xlabel(f"× {scale:.3g}", fontsize=7)
    edges = _bin_edges(real_num, column)
    # Real filled, synthetic as a line on top: both stay visible where they coincide.
    ax.stairs(_density(real_num, edges), edges, label="real (train)", color=REAL_COLOR, fill=True, alpha=0.35)
    ax.stairs(_density(synth_num, edges), edges, label="synthetic", color=SYNTH_COLOR, linewidth=1.4)
    if column.kind == "datetime":
        locator = AutoDateLocator(minticks=3, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylabel("density", fontsize=7)
    ax.legend(fontsize=6, frameon=False)


def _bin_edges(values: np.ndarray, column: Column) -> np.ndarray:
    bins = min(MAX_HIST_BINS, max(5, int(np.sqrt(len(values)))))
    low, high = float(values.min()), float(values.max())
    if column.kind == "numerical" and column.decimals == 0 and high - low < 2**52:
        # Integers get bins of a whole-number width centred on the values, so no bin holds more
        # distinct values than its neighbour (that shows as false stripes).
        width = max(1.0, np.ceil((high - low + 1) / bins))
        edges = low - 0.5 + width * np.arange(int(np.ceil((high - low + 1) / width)) + 1)
    else:
        edges = np.linspace(low, high, bins + 1)
    edges = np.unique(edges)
    if len(edges) < 2:  # one value, or values so large that their spread is lost to float rounding
        step = max(1.0, abs(low) * 1e-9)
        edges = np.array([low - step, high + step])
    return edges


def _density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram as a density over all present values, so mass outside the real range shows as a shortfall."""
    counts, _ = np.histogram(values, bins=edges)
    return counts / (max(len(values), 1) * np.diff(edges))


def category_shares(real: pd.Series, synthetic: pd.Series) -> pd.DataFrame:
    """Share of rows per top real category (+ 'other' and 'missing' when present) in both tables."""
    counts = real.value_counts()
    top = list(counts.index[:TOP_CATEGORIES])
    rows = {_label(v): (_share(real, v), _share(synthetic, v)) for v in top}
    if len(counts) > TOP_CATEGORIES:
        rows["(other)"] = (_other_share(real, top), _other_share(synthetic, top))
    if real.isna().any() or synthetic.isna().any():
        rows["(missing)"] = (float(real.isna().mean()), float(synthetic.isna().mean()))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["real", "synthetic"])


def _share(values: pd.Series, value) -> float:
    return float((values == value).mean()) if len(values) else 0.0


def _other_share(values: pd.Series, top: list) -> float:
    return float((values.notna() & ~values.isin(top)).mean()) if len(values) else 0.0


def _label(value, width: int = 20) -> str:
    text = str(value).replace("$", r"\$")  # '$' would start matplotlib mathtext
    return text if len(text) <= width else text[: width - 1] + "…"


def _category_bars(ax, real: pd.Series, synthetic: pd.Series) -> None:
    shares = category_shares(real, synthetic)
    if shares.empty:
        ax.text(0.5, 0.5, "no real values", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        return
    positions = np.arange(len(shares))
    height = 0.4
    ax.barh(positions - height / 2, shares["real"], height, label="real (train)", color=REAL_COLOR)
    ax.barh(positions + height / 2, shares["synthetic"], height, label="synthetic", color=SYNTH_COLOR)
    ax.set_yticks(positions, shares.index, fontsize=6 if len(shares) > 8 else 7)
    ax.invert_yaxis()
    ax.set_xlabel("share of rows", fontsize=7)
    ax.legend(fontsize=6, frameon=False, loc="lower right")


def association_heatmaps(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column]) -> str | None:
    """Association matrices of the real and synthetic tables (Spearman, Cramér's V, η) and their difference."""
    if len(columns) < 2:
        return None
    schema = Schema(tuple(columns))
    real_matrix = association_matrix(real, schema).to_numpy()
    synth_matrix = association_matrix(synthetic, schema).to_numpy()
    panels = (("real (train)", real_matrix, -1.0, "RdBu_r"), ("synthetic", synth_matrix, -1.0, "RdBu_r"),
              ("|real − synthetic|", np.abs(real_matrix - synth_matrix), 0.0, "Reds"))
    side = min(5.0, 1.6 + 0.22 * len(columns))
    fig = Figure(figsize=(3 * side + 1.0, side + 0.8), dpi=DPI, layout="constrained")
    labels = [_label(c.name, 16) for c in columns]
    size = 7 if len(columns) <= 12 else 5
    for index, (title, matrix, low, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, 3, index + 1)
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=low, vmax=1.0, cmap=cmap)
        ax.set_title(title, fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=size)
        ax.set_yticks(range(len(labels)), labels if index == 0 else [], fontsize=size)
        if index == 2 and len(columns) <= 12:
            _annotate(ax, matrix)
        fig.colorbar(image, ax=ax, shrink=0.7).ax.tick_params(labelsize=6)
    return _png(fig)


def _annotate(ax, values: np.ndarray) -> None:
    for (row, col), value in np.ndenumerate(values):
        text = "–" if np.isnan(value) else f"{value:.2f}"
        ax.text(col, row, text, ha="center", va="center", fontsize=7, color="white" if value > 0.6 else "black")
