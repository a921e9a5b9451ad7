"""Risk and utility per person, the privacy unit of a linked dataset.

A person becomes one row: the root row's data columns; per other table, the number of their rows there, the mean
of each number and date column and the share of the 3 commonest real values of each category column; and, for a
table with an order column, the data columns of their first 3 events side by side. The single-table checks
(distance to closest record, membership inference, train-on-synthetic test-on-real) then run on these rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.util import hash_pandas_object

from tabsynth.metrics.attacks import chance_upper, finite_or_none, unavailable
from tabsynth.metrics.linked_common import NO_ROW, Links, data_columns, order_values, sequences
from tabsynth.metrics.linked_tables import child_aggregates, child_tables, top_categories
from tabsynth.metrics.result import MetricResult
from tabsynth.metrics.risk import dcr_share, mia_auc
from tabsynth.metrics.utility import ml_utility
from tabsynth.table.dataset import Relations
from tabsynth.table.schema import Column, Schema

FIRST_EVENTS = 3

Frames = Mapping[str, pd.DataFrame]
PERSON_DCR_TEXT = ("share of synthetic persons (a root row with all its linked rows, summarised) closer to a "
                   "training person than to any holdout person, corrected to equal sizes: 0.5 is chance, 1.0 is "
                   "all copies")
PERSON_MIA_TEXT = ("ROC AUC of telling training persons from holdout persons by their distance to the synthetic "
                   "persons (0.5 is chance: membership in the training data cannot be told)")
COPIES_TEXT = ("share of synthetic persons with events whose events (every linked row, keys left out, in order) "
               "are identical to those of a training person")
EXCESS_TEXT = ("how much more often synthetic persons repeat a training person's whole sequence of events than real "
               "holdout persons do by chance, up to the 95% upper bound of that chance rate (0: no more than chance)")


def person_layout(real: Frames, relations: Relations, schemas) -> dict[str, dict[str, tuple]]:
    """The category values each child table is summarised by, learnt from the real training rows."""
    return {t: top_categories(real[t], data_columns(relations, schemas, t)) for t in child_tables(relations)}


def person_table(frames: Frames, relations: Relations, schemas, links: Links,
                 layout: Mapping[str, Mapping[str, tuple]]) -> tuple[pd.DataFrame, Schema]:
    """One row per root row, in the root table's order, and the schema of its columns."""
    root_columns = data_columns(relations, schemas, links.root)
    parts = [frames[links.root][[c.name for c in root_columns]].reset_index(drop=True)]
    columns = list(root_columns)
    for table in child_tables(relations):
        child_columns = data_columns(relations, schemas, table)
        summary = child_aggregates(frames[table], links.persons[table], links.people, child_columns,
                                   layout[table], prefix=f"{table}.")
        parts.append(summary)
        columns += [Column(name, "numerical", "float64") for name in summary.columns]
        if relations.tables[table].order_by:
            first, first_columns = _first_events(frames[table], relations, table, links, child_columns)
            parts.append(first)
            columns += first_columns
    return pd.concat(parts, axis=1), Schema(tuple(columns))


def _first_events(frame: pd.DataFrame, relations: Relations, table: str, links: Links, columns: list[Column]
                  ) -> tuple[pd.DataFrame, list[Column]]:
    seq = sequences(frame, relations.tables[table], links.persons[table])
    out, out_columns = {}, []
    for position in range(FIRST_EVENTS):
        at = seq.position == position
        rows, persons = seq.rows[at], seq.group[at]
        for column in columns:
            name = f"{table}.{column.name}@{position + 1}"
            out[name] = pd.Series(frame[column.name].iloc[rows].array, index=persons).reindex(range(links.people))
            out_columns.append(dataclasses.replace(column, name=name))
    return pd.DataFrame(out).reset_index(drop=True), out_columns


def person_records(frames: Frames, relations: Relations, schemas, links: Links) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash per person of all their events (every child table's data columns, in order: by the order
    column, then by value), and whether they have any. A dataset of one table: the root row is the record."""
    tables = child_tables(relations)
    if not tables:
        names = [c.name for c in data_columns(relations, schemas, links.root)]
        return _row_hashes(frames[links.root], names), np.ones(links.people, dtype=bool)
    parts, events = {}, np.zeros(links.people, dtype=np.int64)
    for table in tables:
        frame, persons = frames[table], links.persons[table]
        names = [c.name for c in data_columns(relations, schemas, table)]
        rows = pd.DataFrame({"person": persons, "order": order_values(frame, relations.tables[table]),
                             "row": _row_hashes(frame, names)})
        rows = rows[rows["person"] != NO_ROW].sort_values(["person", "order", "row"], kind="stable")
        parts[table], parts[f"{table}:events"] = _sequence_hashes(rows, links.people)
        events += parts[f"{table}:events"]
    return _row_hashes(pd.DataFrame(parts), list(parts)), events > 0


def _row_hashes(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """One 64-bit hash per row of the named columns (missing values hash alike)."""
    if not names:
        return np.zeros(len(frame), dtype=np.uint64)
    return hash_pandas_object(frame[names], index=False).to_numpy(np.uint64)


def _sequence_hashes(rows: pd.DataFrame, people: int) -> tuple[np.ndarray, np.ndarray]:
    """Per person, the sum (modulo 2^64) of the hashes of (row hash, position in the sequence), and the count."""
    person = rows["person"].to_numpy(np.int64)
    position = rows.groupby("person").cumcount().to_numpy()
    mixed = _row_hashes(pd.DataFrame({"row": rows["row"].to_numpy(), "position": position}), ["row", "position"])
    hashes, counts = np.zeros(people, dtype=np.uint64), np.bincount(person, minlength=people)
    if len(person):
        starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
        hashes[person[starts]] = np.add.reduceat(mixed, starts)  # uint64 sums wrap around: modulo 2^64
    return hashes, counts


def exact_sequence_copies(train: tuple[np.ndarray, np.ndarray], synthetic: tuple[np.ndarray, np.ndarray],
                          holdout: tuple[np.ndarray, np.ndarray] | None) -> list[MetricResult]:
    """Share of synthetic persons with events whose events equal a training person's (equal 64-bit hashes),
    beside the rate at which real holdout persons repeat one (the chance rate). No synthetic person with events:
    0, nothing is copied."""
    known = train[0][train[1]]

    def rate(records: np.ndarray, has_events: np.ndarray) -> float:
        return float(np.isin(records[has_events], known).mean()) if has_events.any() else 0.0

    copied, chance = rate(*synthetic), rate(*holdout) if holdout is not None else None
    compared = int(holdout[1].sum()) if holdout is not None else 0
    bound = None if chance is None else chance_upper(chance, compared)
    details = {"synthetic_persons": len(synthetic[0]), "synthetic_persons_with_events": int(synthetic[1].sum()),
               "holdout_copy_rate": chance, "holdout_persons_with_events": compared, "chance_upper_bound": bound}
    excess = float("nan") if chance is None else max(0.0, copied - bound)
    return [MetricResult("exact_sequence_copies", copied, "min", COPIES_TEXT, details=details),
            MetricResult("exact_sequence_copy_excess", excess, "min", EXCESS_TEXT, details=details)]


def person_risks(train: pd.DataFrame, holdout: pd.DataFrame | None, synthetic: pd.DataFrame, schema: Schema, *,
                 rng: np.random.Generator) -> list[MetricResult]:
    """Distance to closest record and membership inference, on person rows."""
    if holdout is None:
        reason = "needs the holdout persons as the chance baseline"
        return (unavailable("person_dcr_share", PERSON_DCR_TEXT, reason, goal="target")
                + unavailable("person_membership", PERSON_MIA_TEXT, reason))
    dcr_rng, mia_rng = np.random.default_rng(rng).spawn(2)
    (dcr,) = dcr_share(train, holdout, synthetic, schema, rng=dcr_rng)
    (mia,) = mia_auc(train, holdout, synthetic, schema, rng=mia_rng)
    return [dataclasses.replace(dcr, name="person_dcr_share", description=PERSON_DCR_TEXT),
            dataclasses.replace(mia, name="person_membership", description=PERSON_MIA_TEXT)]


def person_utility(train: pd.DataFrame, holdout: pd.DataFrame | None, synthetic: pd.DataFrame, schema: Schema,
                   target: str, *, random_state: int = 0) -> list[MetricResult]:
    """A root column predicted from the rest of the person row: a model trained on synthetic persons, tested on
    real holdout persons, beside the same model trained on real training persons (in details)."""
    is_number = schema[target].kind == "numerical"
    name = f"person_tstr_{'r2' if is_number else 'auc'}"
    text = (f"{'R²' if is_number else 'ROC AUC'} on real holdout persons of a model predicting {target} from the "
            f"rest of the person (root columns, summaries and first events of linked rows), trained on synthetic "
            f"persons")
    if holdout is None:
        return unavailable(name, text, "needs the holdout persons to test on", goal="max")
    # A feature missing in every training row cannot be binned by the models: it is left out of both fits.
    empty = [c.name for c in schema.columns if c.name != target
             and not (train[c.name].notna().any() and synthetic[c.name].notna().any())]
    kept = Schema(tuple(c for c in schema.columns if c.name not in empty))
    scores = {m.name: m for m in ml_utility(train, holdout, synthetic, kept, target, random_state=random_state)}
    tstr = scores[name.removeprefix("person_")]
    baseline = scores[tstr.name.replace("tstr", "trtr")]
    details = {**tstr.details, "trtr": finite_or_none(baseline.value),
               "tstr_ratio": finite_or_none(scores["tstr_ratio"].value), "features_left_out": empty}
    if not tstr.is_valid:
        details["reason"] = (f"no score: the synthetic persons lack one of the real classes of {target}, or "
                             f"{target} does not vary")
    return [MetricResult(name, tstr.value, "max", text, details=details)]
