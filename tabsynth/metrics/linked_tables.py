"""Linked tables, table by table and parent to child: keys that resolve, each table's columns, how many children
a parent has, and whether parents' attributes go with their children's as they do in the real rows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tabsynth.metrics.fidelity import NUMERIC_KINDS, WORST_PAIRS, association_matrix
from tabsynth.metrics.linked_common import (
    NO_ROW,
    Links,
    count_codes,
    data_columns,
    per_table,
    row_positions,
    tvd_or_disjoint,
)
from tabsynth.metrics.result import MetricResult
from tabsynth.table.dataset import Relations
from tabsynth.table.distances import column_tvds, mean_or_zero, numeric_values
from tabsynth.table.schema import Column, Schema

SHARED_CATEGORIES = 3  # a child category column is summarised per parent by the shares of its 3 commonest values
COUNT = "children"

Frames = Mapping[str, pd.DataFrame]


def referential_integrity(synthetic: Frames, relations: Relations) -> list[MetricResult]:
    """Per synthetic table, the worst of: the share of rows whose primary key is present and not a repeat, and,
    per foreign key, the share of rows whose key names a row of the synthetic parent table."""
    values, details = {}, {}
    for name, spec in relations.tables.items():
        frame, shares, found = synthetic[name], [], {}
        if spec.primary_key:
            key = frame[spec.primary_key]
            bad = key.isna() | key.duplicated()
            found["missing_or_repeated_primary_keys"] = int(bad.sum())
            shares.append(1.0 - float(bad.mean()) if len(frame) else 1.0)
        for fk in spec.foreign_keys:
            orphans = row_positions(frame[fk.column], synthetic[fk.parent][fk.parent_column]) == NO_ROW
            found[f"orphans:{fk.column}"] = int(orphans.sum())
            shares.append(1.0 - float(orphans.mean()) if len(frame) else 1.0)
        values[name], details[name] = min(shares, default=1.0), {**found, "rows": len(frame)}
    orphans = sum(n for found in details.values() for key, n in found.items() if key.startswith("orphans:"))
    repeats = sum(found.get("missing_or_repeated_primary_keys", 0) for found in details.values())
    return per_table("referential_integrity", values, "max",
                     "share of synthetic rows whose keys hold: a primary key present and unique, every foreign key "
                     "naming an existing parent row (1.0: every key holds)", details, reads_private_rows=False,
                     summary={"orphans": orphans, "missing_or_repeated_primary_keys": repeats})


def table_fidelity(real: Frames, synthetic: Frames, relations: Relations, schemas) -> list[MetricResult]:
    """Mean one-way and two-way total variation distance of each table's data columns (keys and PII left out)."""
    one, two, details = {}, {}, {}
    for name in relations.names:
        columns = data_columns(relations, schemas, name)
        rows = {"real": len(real[name]), "synthetic": len(synthetic[name])}
        if not rows["real"] or not rows["synthetic"]:
            one[name] = two[name] = float(rows["real"] != rows["synthetic"])
            details[name] = {"rows": rows}
            continue
        per_column, pairs, total = column_tvds(real[name], synthetic[name], columns)
        one[name], two[name] = mean_or_zero(per_column.values()), mean_or_zero(pairs)
        details[name] = {"per_column": per_column, "pairs": len(pairs), "pairs_in_table": total, "rows": rows}
    return (per_table("table_column_tvd", one, "min", "mean one-way total variation distance over the table's "
                      "data columns (keys and PII left out; 0 = same distributions, 1 = disjoint)", details)
            + per_table("table_pair_tvd", two, "min", "mean two-way total variation distance over pairs of the "
                        "table's data columns (keys and PII left out)", details))


def child_tables(relations: Relations) -> list[str]:
    """Every table that hangs from a parent, parents first."""
    return [name for name in relations.parents_first() if relations.tables[name].foreign_keys]


def children_counts(links: Links, frames: Frames, relations: Relations, child: str) -> np.ndarray:
    """Number of rows of `child` under each row of its parent table, zero included."""
    parent = relations.tables[child].foreign_keys[0].parent
    kept = links.parents[child][links.parents[child] != NO_ROW]
    return np.bincount(kept, minlength=len(frames[parent]))


def children_per_parent_tvd(real: Frames, synthetic: Frames, relations: Relations, real_links: Links,
                            synthetic_links: Links) -> list[MetricResult]:
    """TVD of the number of children per parent row (zero included), binned 0..7, then 8-15, 16-31..."""
    values, details = {}, {}
    for child in child_tables(relations):
        counts = [children_counts(lk, frames, relations, child)
                  for lk, frames in ((real_links, real), (synthetic_links, synthetic))]
        values[child] = tvd_or_disjoint(*(count_codes(c) for c in counts))
        details[child] = {side: _count_summary(c) for side, c in zip(("real", "synthetic"), counts, strict=True)}
    return per_table("children_per_parent_tvd", values, "min",
                     "total variation distance of the number of child rows per parent row, parents with none "
                     "included (exact counts 0 to 7, then bins 8-15, 16-31, ...)", details, what="child table")


def _count_summary(counts: np.ndarray) -> dict:
    if not len(counts):
        return {"parents": 0}
    return {"parents": len(counts), "mean": float(counts.mean()), "share_with_none": float(np.mean(counts == 0))}


def top_categories(frame: pd.DataFrame, columns: list[Column]) -> dict[str, tuple]:
    """The commonest real values of each category column, whose shares summarise a parent's children."""
    return {c.name: tuple(frame[c.name].dropna().value_counts().index[:SHARED_CATEGORIES])
            for c in columns if c.kind not in NUMERIC_KINDS}


def child_aggregates(frame: pd.DataFrame, group: np.ndarray, groups: int, columns: list[Column],
                     categories: Mapping[str, tuple], prefix: str = "") -> pd.DataFrame:
    """Per group (parent row or person): the number of rows, the mean of each number and date column (missing
    where there is none), and the share of rows holding each of `categories`'s values."""
    kept = group != NO_ROW
    g = group[kept]
    counts = np.bincount(g, minlength=groups).astype(float)
    out = {f"{prefix}{COUNT}": counts}
    for column in columns:
        if column.kind in NUMERIC_KINDS:
            values = numeric_values(frame[column.name])[kept]
            present = np.isfinite(values)
            out[f"{prefix}{column.name}:mean"] = _ratio(np.bincount(g[present], values[present], groups),
                                                        np.bincount(g[present], minlength=groups))
            continue
        cells = frame[column.name].astype(object)
        for value in categories.get(column.name, ()):
            hits = (cells == value).fillna(False).to_numpy(bool)[kept]
            out[f"{prefix}{column.name}={value}:share"] = _ratio(np.bincount(g, hits, groups), counts)
    return pd.DataFrame(out)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.full(len(numerator), np.nan), where=denominator > 0)


def parent_child_association_gap(real: Frames, synthetic: Frames, relations: Relations, schemas,
                                 real_links: Links, synthetic_links: Links, *, random_state: int = 0
                                 ) -> list[MetricResult]:
    """Per child table: the mean absolute difference, real against synthetic, of the association between each
    parent data column and each summary of the parent's children (their number, the mean of each number or date
    column, the share of each of the 3 commonest values of each category column)."""
    values, details = {}, {}
    for child in child_tables(relations):
        parent = relations.tables[child].foreign_keys[0].parent
        parent_columns = data_columns(relations, schemas, parent)
        child_columns = data_columns(relations, schemas, child)
        categories = top_categories(real[child], child_columns)
        matrices = []
        for frames, lk in ((real, real_links), (synthetic, synthetic_links)):
            summary = child_aggregates(frames[child], lk.parents[child], len(frames[parent]), child_columns,
                                       categories, prefix=f"{child}.")
            joined = pd.concat([frames[parent][[c.name for c in parent_columns]].reset_index(drop=True), summary],
                               axis=1)
            schema = Schema((*parent_columns, *(Column(n, "numerical", "float64") for n in summary.columns)))
            matrices.append(association_matrix(joined, schema, random_state=random_state))
        pairs = [(p.name, s) for p in parent_columns for s in summary.columns]
        values[child], details[child] = _association_gaps(*matrices, pairs)
    return per_table("parent_child_association_gap", values, "min",
                     "mean absolute difference between real and synthetic associations (Spearman, correlation "
                     "ratio) of each parent column with each summary of the parent's children: their number, "
                     "means of their number and date columns, shares of their commonest categories",
                     details, what="child table")


def _association_gaps(real: pd.DataFrame, synthetic: pd.DataFrame, pairs: list[tuple[str, str]]
                      ) -> tuple[float, dict]:
    """Mean gap over the pairs with a real association; a synthetic association that cannot be computed (no
    children anywhere, say) counts as none."""
    rows = [(a, b, real.loc[a, b], synthetic.loc[a, b]) for a, b in pairs if np.isfinite(real.loc[a, b])]
    gaps = np.array([abs(r - (s if np.isfinite(s) else 0.0)) for _, _, r, s in rows])
    worst = np.argsort(-gaps, kind="stable")[:WORST_PAIRS] if len(gaps) else []
    details = {"pairs": len(rows), "worst_pairs": [
        {"parent_column": rows[i][0], "child_summary": rows[i][1], "real": float(rows[i][2]),
         "synthetic": float(rows[i][3]) if np.isfinite(rows[i][3]) else None, "difference": float(gaps[i])}
        for i in worst]}
    return mean_or_zero(gaps), details
