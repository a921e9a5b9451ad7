"""Every check of a linked dataset (patients and their visits, cards and their payments), in one call.

Metric names: `<metric>.<table>` per table (or per child table, or per sequence table) and `<metric>` alone for
the worst table, so that one policy rule covers any dataset; the person checks have one figure per dataset.
A check that crashes becomes one failing `check_error:linked_*` result, as in `tabsynth.metrics.checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.metrics.checks import run_one
from tabsynth.metrics.linked_common import data_columns, links
from tabsynth.metrics.linked_persons import (
    exact_sequence_copies,
    person_layout,
    person_records,
    person_risks,
    person_table,
    person_utility,
)
from tabsynth.metrics.linked_sequences import sequence_metrics
from tabsynth.metrics.linked_tables import (
    children_per_parent_tvd,
    parent_child_association_gap,
    referential_integrity,
    table_fidelity,
)
from tabsynth.metrics.result import MetricResult
from tabsynth.table.dataset import Relations
from tabsynth.table.schema import Schema

Frames = Mapping[str, pd.DataFrame]


def linked_metrics(real: Frames, synthetic: Frames, relations: Relations, schemas: Mapping[str, Schema], *,
                   holdout: Frames | None = None, target: tuple[str, str] | None = None,
                   rng: np.random.Generator | int | None = None, random_state: int = 0) -> list[MetricResult]:
    """Keys, per-table fidelity, parent-child structure, sequences, and per-person risk and utility.

    `real`: the training persons' rows; `holdout`: rows of persons kept out of training (the chance baseline of
    the risk checks and the test set of `person_tstr_*`; without it those checks are NaN and say why);
    `target`: (root table, column) predicted by `person_tstr_auc` / `person_tstr_r2`. Frames are conformed to
    their table's schema. `rng` drives the risk checks' sampling; `random_state` the association subsample and
    the utility models.
    """
    target_column = _target_column(relations, schemas, target)
    real_links, synthetic_links = links(relations, real), links(relations, synthetic)
    persons = _Persons(real, synthetic, holdout, relations, schemas)
    checks: dict[str, tuple[Callable[[], list[MetricResult]], bool]] = {  # name: (check, reads private rows)
        "linked keys": (lambda: referential_integrity(synthetic, relations), False),
        "linked tables": (lambda: table_fidelity(real, synthetic, relations, schemas), True),
        "linked children": (lambda: children_per_parent_tvd(real, synthetic, relations, real_links,
                                                            synthetic_links), True),
        "linked association": (lambda: parent_child_association_gap(
            real, synthetic, relations, schemas, real_links, synthetic_links, random_state=random_state), True),
        "linked sequences": (lambda: sequence_metrics(real, synthetic, relations, schemas, real_links,
                                                      synthetic_links), True),
        "linked copies": (persons.copies, True),
        "linked person risk": (lambda: person_risks(*persons.rows, rng=np.random.default_rng(rng)), True),
    }
    if target_column is not None:
        checks["linked person utility"] = (
            lambda: person_utility(*persons.rows, target_column, random_state=random_state), True)
    results = []
    for name, (check, private) in checks.items():
        results += run_one(name, check, reads_private_rows=private)
    return results


class _Persons:
    """One row per person for training, holdout and synthetic persons, built once on first use."""

    def __init__(self, real: Frames, synthetic: Frames, holdout: Frames | None, relations: Relations, schemas):
        self.sides = {"train": real, "holdout": holdout, "synthetic": synthetic}
        self.relations, self.schemas = relations, schemas

    @cached_property
    def rows(self) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame, Schema]:
        """Training, holdout (None without one) and synthetic person rows, and their schema."""
        layout = person_layout(self.sides["train"], self.relations, self.schemas)
        built = {side: person_table(frames, self.relations, self.schemas, links(self.relations, frames), layout)
                 for side, frames in self.sides.items() if frames is not None}
        holdout = built["holdout"][0] if "holdout" in built else None
        return built["train"][0], holdout, built["synthetic"][0], built["train"][1]

    def copies(self) -> list[MetricResult]:
        records = {side: None if frames is None else
                   person_records(frames, self.relations, self.schemas, links(self.relations, frames))
                   for side, frames in self.sides.items()}
        return exact_sequence_copies(records["train"], records["synthetic"], records["holdout"])


def _target_column(relations: Relations, schemas: Mapping[str, Schema], target: tuple[str, str] | None
                   ) -> str | None:
    """The target's column, which must be a data column of the root (person) table."""
    if target is None:
        return None
    table, column = target
    root = relations.root()
    if table != root:
        raise InputError(f"the target of a linked dataset is a column of the person table {root!r}; "
                         f"got {table}.{column}")
    names = [c.name for c in data_columns(relations, schemas, root)]
    if column not in names:
        raise InputError(f"target column {column!r} is not a modelled column of {root!r} "
                         f"(modelled: {', '.join(names) or 'none'})")
    return column
