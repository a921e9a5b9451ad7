"""The report's per-class view of the target: each class's share of the real and the synthetic rows, and how
well the synthetic rows of that class match the real rows of that class. It reads the private rows, so only the
reports that may show private-row figures include it (a release that is not DP, a DP release's internal report)."""

from __future__ import annotations

import pandas as pd

from tabsynth.publish.findings import fmt, items
from tabsynth.table.distances import bin_codes, tvd
from tabsynth.table.schema import Schema

MAX_CLASSES = 12
LABEL_WIDTH = 40


def target_of(manifest: dict, schema: Schema) -> str | None:
    """The target the run's utility checks used (their details name it), if it is a class column here."""
    for metric in items(manifest, "metrics"):
        details = metric.get("details")
        name = details.get("target") if isinstance(details, dict) else None
        if isinstance(name, str) and name in schema.names and schema[name].kind in ("categorical", "boolean"):
            return name
    return None


def class_rows(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, target: str) -> dict:
    """Per real class, most frequent first (at most MAX_CLASSES): its shares, and the mean and worst one-way TVD of
    the other modelled columns between the real and the synthetic rows of that class."""
    others = [c for c in schema.modelled() if c.name != target and c.name in real and c.name in synthetic]
    counts = real[target].value_counts()
    rows = [_class_row(label, real, synthetic, target, others) for label in counts.index[:MAX_CLASSES]]
    return {"target": target, "rows": rows, "left_out": max(0, len(counts) - MAX_CLASSES),
            "compared": len(others)}


def _class_row(label, real: pd.DataFrame, synthetic: pd.DataFrame, target: str, others) -> dict:
    parts = [frame[frame[target] == label] for frame in (real, synthetic)]
    distances = {c.name: tvd(*bin_codes(c, parts[0][c.name], parts[1][c.name])) for c in others} \
        if len(parts[1]) and others else {}
    worst = max(distances, key=distances.get) if distances else None
    text = str(label)
    return {"label": text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 1] + "…",
            "real_share": _share(len(parts[0]), len(real)), "synthetic_share": _share(len(parts[1]), len(synthetic)),
            "mean_tvd": fmt(sum(distances.values()) / len(distances)) if distances else "n/a",
            "worst": f"{worst} ({fmt(distances[worst])})" if worst else "no synthetic rows of this class"
            if not len(parts[1]) else "n/a"}


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"
