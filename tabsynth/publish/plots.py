"""The report's plots, as base64 PNG: real vs synthetic distributions per column, and association heatmaps."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from tabsynth.metrics.fidelity import association_matrix
from tabsynth.table.infer import utc_nanoseconds
from tabsynth.table.schema import Column, Schema

NANOSECONDS_PER_DAY = 86_400 * 10**9
TOP_CATEGORIES = 15
MAX_HIST_BINS = 30
TAIL_SHARE = 0.1  # a median this close (as a share of the range) to one end: the other end is a long tail
LOG_DECADES = 3  # positive values spanning this many powers of ten, with a long right tail, go on a log axis
SPIKE_SHARE = 0.3  # a long-tailed column's value this common (0 for most capital gains) is reported apart
FIGSIZE = (4.0, 2.6)
DPI = 80
REAL_COLOR, SYNTH_COLOR = "#2b6cb0", "#dd6b20"


@dataclass(frozen=True)
class Plot:
    column: str
    kind: str
    png: str  # base64
    missing: str = ""  # histograms leave missing values out, so the caption states their share
    axis: str = ""  # a long-tailed number column: "log scale" or "quantile bins" (", value 0 apart"), else ""


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


def column_plot(column: Column, real: pd.Series, synthetic: pd.Series) -> Plot:
    fig, ax = _new_axes()
    if column.kind not in ("numerical", "datetime"):
        _category_bars(ax, real, synthetic)
        return Plot(column.name, column.kind, _png(fig))
    axis = _histogram(ax, column, real, synthetic)
    missing = ""
    if real.isna().any() or synthetic.isna().any():
        missing = f"missing: real {real.isna().mean():.1%}, synthetic {synthetic.isna().mean():.1%}"
    return Plot(column.name, column.kind, _png(fig), missing, axis)


AXIS_WORDS = {"log": "log scale", "quantile": "quantile bins"}


def axis_for(values: np.ndarray, column: Column) -> str:
    """How to draw a number column's values (the real ones the plot shows): "linear", or for a long tail (the
    median within TAIL_SHARE of the range from one end), "log" when the values are positive and the tail is on
    the right over LOG_DECADES powers of ten, else "quantile" (bins at the real values' quantiles)."""
    if column.kind != "numerical" or len(values) < 2:
        return "linear"
    low, middle, high = (float(v) for v in np.quantile(values, [0.0, 0.5, 1.0]))
    span = high - low
    if not np.isfinite(span) or span <= 0 or min(middle - low, high - middle) >= TAIL_SHARE * span:
        return "linear"
    return _tail_axis(values)


def _tail_axis(values: np.ndarray) -> str:
    low, middle, high = (float(v) for v in np.quantile(values, [0.0, 0.5, 1.0]))
    with np.errstate(over="ignore", divide="ignore"):
        decades = np.log10(high / low) if low > 0 else 0.0
    return "log" if low > 0 and middle - low < high - middle and decades >= LOG_DECADES else "quantile"


def _spike(values: np.ndarray) -> float | None:
    """The most common value when it holds SPIKE_SHARE of the values and at least two others exist."""
    distinct, counts = np.unique(values, return_counts=True)
    top = int(counts.argmax())
    return float(distinct[top]) if counts[top] >= SPIKE_SHARE * len(values) and len(distinct) >= 3 else None


def as_numbers(values: pd.Series, kind: str) -> np.ndarray:
    """Floats for plotting: datetimes become days since 1970 (matplotlib's date numbers), in UTC."""
    if kind == "datetime":
        return utc_nanoseconds(values) / NANOSECONDS_PER_DAY
    return pd.to_numeric(values, errors="coerce").to_numpy(float)


def _histogram(ax, column: Column, real: pd.Series, synthetic: pd.Series) -> str:
    """Draws real vs synthetic; returns how, for the caption ("" for a plain density on a linear axis)."""
    real_num, synth_num = as_numbers(real, column.kind), as_numbers(synthetic, column.kind)
    real_num, synth_num = real_num[np.isfinite(real_num)], synth_num[np.isfinite(synth_num)]
    if not len(real_num):
        ax.text(0.5, 0.5, "no real values", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        return ""
    axis = axis_for(real_num, column)
    if axis != "linear":
        return _tail_histogram(ax, axis, real_num, synth_num)
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
    return ""


def _tail_histogram(ax, axis: str, real: np.ndarray, synthetic: np.ndarray) -> str:
    """Share of rows per bin. "log": bins equally wide in log10 on a log axis. "quantile": bins at the real
    values' quantiles, drawn equally wide (so the real rows look flat where they spread out, and the synthetic
    line shows where the model puts too many or too few), the axis labelled with the bin edges' values.
    A very common value (`_spike`) is stated in the title with its shares, and the other values are drawn."""
    spike, apart = _spike(real), ""
    if spike is not None:
        shares = [float(np.mean(v == spike)) if len(v) else 0.0 for v in (real, synthetic)]
        ax.set_title(f"value {spike:.4g}: real {shares[0]:.1%}, synthetic {shares[1]:.1%}; the others:", fontsize=7)
        real, synthetic = real[real != spike], synthetic[synthetic != spike]
        axis, apart = _tail_axis(real), f", value {spike:.4g} apart"
    bins = min(MAX_HIST_BINS, max(5, int(np.sqrt(len(real)))))
    if axis == "log":
        edges = np.geomspace(real.min(), real.max(), bins + 1)
        ax.set_xscale("log")
        shown = edges
    else:
        edges = np.unique(np.quantile(real, np.linspace(0.0, 1.0, bins + 1)))
        shown = np.arange(len(edges), dtype=float)
        ticks = np.unique(np.linspace(0, len(edges) - 1, 5).round().astype(int))
        ax.set_xticks(ticks, [f"{edges[i]:.3g}" for i in ticks])
        ax.set_xlabel("bins at the real values' quantiles", fontsize=7)
    for values, style in ((real, dict(label="real (train)", color=REAL_COLOR, fill=True, alpha=0.35)),
                          (synthetic, dict(label="synthetic", color=SYNTH_COLOR, linewidth=1.4))):
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(counts / max(len(values), 1), shown, **style)
    ax.set_ylabel("share of the other rows" if apart else "share of rows", fontsize=7)
    ax.legend(fontsize=6, frameon=False)
    return AXIS_WORDS[axis] + apart


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
