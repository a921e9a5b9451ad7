"""A flat table with several rows per person (a key-named column that repeats: `subject_id`, `id` of R's `cgd`)
is released as persons with events: split into a person table and an events table for the model and the checks,
so the person is the unit of the split, the model and the risk checks, then joined back into one flat file
shaped like the input."""

from __future__ import annotations

import pandas as pd

from tabsynth.errors import InputError
from tabsynth.run.options import DatasetOptions, Progress, ReleaseOptions, ReleaseResult
from tabsynth.table.dataset import Relations
from tabsynth.table.repeated import RepeatedKey, find_repeated_keys, split_repeated_key
from tabsynth.table.schema import Schema

NOT_BY_PERSON = {"--constraints": "constraints", "--sensitive": "sensitive", "--out-table": "out_table"}


def person_key(raw: pd.DataFrame, schema: Schema, user: Schema | None) -> RepeatedKey | None:
    """The repeated person key to split by: a key-named column whose values repeat, left an identifier by
    inference (a schema that declares the column otherwise keeps the table flat), with columns that vary within
    a person (else the rows are whole duplicates, not events)."""
    declared = set(user.names) if user is not None else set()
    for found in find_repeated_keys(raw):
        if found.column not in declared and schema[found.column].kind == "id" and found.varying:
            return found
    return None


def release_by_person(options: ReleaseOptions, raw: pd.DataFrame, key: RepeatedKey, say: Progress,
                      private: bool = False) -> ReleaseResult:
    """`private`: DP is asked for; the split then reads nothing of the rows, and the release is per-person DP."""
    from tabsynth.run.linked_release import release_dataset

    given = [flag for flag, field in NOT_BY_PERSON.items() if getattr(options, field)]
    if given:
        raise InputError(f"{', '.join(given)}: not available for a table released by person ({key.describe()}); "
                         f"declare {key.column}'s kind in a schema file to release its rows as independent")
    say(f"{key.column} repeats: releasing persons with their events", 0.03)
    relations, frames = split_repeated_key(raw, key.column, private=private)
    return release_dataset(DatasetOptions(
        relations=relations, out=options.out, frames=frames, model=options.model, rows=options.rows,
        seed=options.seed, policy=options.policy, fmt=options.fmt, overwrite=options.overwrite,
        model_params=options.model_params, target=options.target, flat=FlatLayout(key.column, tuple(raw.columns)),
        epsilon=options.epsilon, delta=options.delta, source_id=options.source_id, ledger=options.ledger), say)


class FlatLayout:
    """How a split flat table is joined back: the person key and the input's column order."""

    def __init__(self, key: str, columns: tuple[str, ...]):
        self.key, self.columns = key, columns

    def join(self, tables: dict[str, pd.DataFrame], relations: Relations) -> pd.DataFrame:
        persons = relations.root()
        (events,) = relations.children(persons)
        rows = tables[events].merge(tables[persons], on=self.key, how="inner", sort=False)
        return rows[[c for c in self.columns if c in rows.columns]]

    def record(self, relations: Relations) -> dict:
        return {"key": self.key, "note": f"the input is one table with several rows per {self.key}: split into "
                f"{' and '.join(relations.names)} for the model and the checks (the person is the unit), and "
                "released joined back as one table shaped like the input"}
