"""`LinkedSynthesizer`: synthetic persons with every row that hangs from them (patients and their visits).

The root (person) table is fitted by a single-table model of the registry, with a column per child table holding
each person's number of children (and the first child's order value), so counts and attributes are learnt
jointly. Each child table is a `SequenceModel`: its rows generated per parent, position by position, given the
parent's attributes, the position, the sequence length and the previous row; its own children's counts are
columns it generates, so deeper trees work the same way. Order columns are rebuilt from generated gaps, keys are
new, and foreign keys point at the synthetic parents. PII columns are not modelled: they come back as empty
(None) columns, for the release to fill with fakes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tabsynth.errors import ModelError
from tabsynth.models.linked.keys import KeySpace, key_space
from tabsynth.models.linked.layout import (
    GAP,
    attribute_columns,
    count_name,
    parent_key,
    prepare,
    start_name,
)
from tabsynth.models.registry import create_model, model_class
from tabsynth.table.dataset import Relations, check_rows
from tabsynth.table.schema import Schema
from tabsynth.table.values import to_numbers

LINKED_PARAMS = {"length_quantile": 0.999}  # sequences are cut at this quantile of the number of children


class LinkedSynthesizer:
    name = "linked"

    def __init__(self, model: str = "argn", **params):
        self.model = model
        self.params = params

    def fit(self, frames: Mapping[str, pd.DataFrame], relations: Relations, schemas: Mapping[str, Schema], *,
            rng: np.random.Generator | None = None, progress=None) -> LinkedSynthesizer:
        relations.check()
        check_rows(relations, frames)
        rng = np.random.default_rng(rng)
        quantile = self.params.get("length_quantile", LINKED_PARAMS["length_quantile"])
        if not isinstance(quantile, (int, float)) or not 0 < quantile <= 1:
            raise ModelError(f"length_quantile must be a number in (0, 1], got {quantile!r}")
        prepared = prepare(frames, relations, schemas, quantile)
        self.relations_, self.schemas_ = relations, dict(schemas)
        self.caps_, self.orders_ = prepared.caps, prepared.orders
        self.starts_ = {name: _median_start(prepared, relations, name) for name in prepared.orders}
        self.keys_ = _key_spaces(frames, relations, schemas)
        root = relations.root()
        self.root_schema_ = Schema(tuple(prepared.columns[root]))
        self.persons_ = len(prepared.frames[root])
        self.root_ = self._fit_root(prepared.frames[root], rng, _tagged(progress, root))
        self.sequences_ = {name: self._fit_sequence(name, prepared, rng, _tagged(progress, name))
                           for name in relations.parents_first() if name != root}
        return self

    def _fit_root(self, frame: pd.DataFrame, rng: np.random.Generator, progress):
        params = self._root_params()
        if self.model == "argn":
            params.setdefault("flexible", 0.0)  # the root is sampled without conditions: train the fixed order only
        model = create_model(self.model, **params)
        if getattr(model, "differentially_private", False):
            raise ModelError(f"model {self.model!r} is differentially private; the linked model is not yet")
        extra = {"progress": progress} if "progress" in inspect.signature(model.fit).parameters else {}
        return model.fit(frame, self.root_schema_, rng=rng, **extra)

    def _root_params(self) -> dict:
        """The params the root's model takes; each of the others must be one the sequence models take."""
        from tabsynth.models.linked.sequence import DEFAULTS

        accepted = inspect.signature(model_class(self.model).__init__).parameters
        root = {k: v for k, v in self.params.items() if k in accepted}
        unknown = sorted(set(self.params) - set(root) - set(DEFAULTS) - set(LINKED_PARAMS))
        if unknown:
            raise ModelError(f"linked model: unknown parameter(s) {', '.join(unknown)} (neither {self.model!r} "
                             f"nor the sequence models take them)")
        return root

    def _fit_sequence(self, name: str, prepared, rng: np.random.Generator, progress):
        from tabsynth.models.linked.sequence import SequenceModel

        parent = parent_key(self.relations_, name).parent
        return SequenceModel(**self.params).fit(
            prepared.frames[parent], attribute_columns(self.relations_, self.schemas_[parent], parent),
            prepared.frames[name], prepared.columns[name], prepared.parent_rows[name], prepared.positions[name],
            rng, progress)

    def sample(self, n_persons: int | None = None, *, rng: np.random.Generator | None = None
               ) -> dict[str, pd.DataFrame]:
        """`n_persons` root rows (default: as many as were fitted) and all their children."""
        rng = np.random.default_rng(rng)
        root = self.relations_.root()
        n_persons = self.persons_ if n_persons is None else n_persons
        modelled = {root: self.root_.sample(n_persons, rng=rng).reset_index(drop=True)}
        parent_rows = {}
        for name in self.relations_.parents_first():
            if name != root:
                modelled[name], parent_rows[name] = self._sample_children(name, modelled, rng)
        return self._with_keys(modelled, parent_rows, rng)

    def _sample_children(self, name: str, modelled: dict, rng: np.random.Generator):
        parent = parent_key(self.relations_, name).parent
        parents = modelled[parent]
        counts = pd.to_numeric(parents[count_name(name)], errors="coerce").fillna(0).to_numpy(float)
        lengths = np.clip(np.round(counts), 0, self.caps_[name]).astype(np.int64)
        attributes = [c.name for c in attribute_columns(self.relations_, self.schemas_[parent], parent)]
        events, rows, positions = self.sequences_[name].generate(parents[attributes], lengths, rng)
        order = self.orders_.get(name)
        if order is not None:
            starts = to_numbers(order.column.kind, parents[start_name(name)], unit="ns")[rows]
            starts = np.where(np.isnan(starts), self.starts_[name], starts)
            events[order.column.name] = order.rebuild(starts, events.pop(GAP).to_numpy(float), positions)
        return events, rows

    def _with_keys(self, modelled: dict, parent_rows: dict, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        """Each table in its real column order: new keys, foreign keys to the synthetic parents, PII as None."""
        out = {}
        for name in self.relations_.parents_first():
            spec, frame = self.relations_.tables[name], modelled[name]
            columns = {}
            for column in self.schemas_[name].columns:
                fk = next((k for k in spec.foreign_keys if k.column == column.name), None)
                if fk is not None:
                    parent_keys = out[fk.parent][fk.parent_column].to_numpy()[parent_rows[name]]
                    columns[column.name] = pd.Series(parent_keys, name=column.name).astype(column.dtype)
                elif column.name in self.keys_.get(name, {}):
                    columns[column.name] = self.keys_[name][column.name].draw(column, len(frame), rng)
                elif column.kind == "pii":
                    columns[column.name] = pd.Series([None] * len(frame), dtype=object)
                else:
                    columns[column.name] = frame[column.name].reset_index(drop=True)
            out[name] = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
        return out

    def save(self, folder) -> None:
        from tabsynth.models.linked.folder import save_linked

        save_linked(self, folder)


def load_linked(folder) -> LinkedSynthesizer:
    from tabsynth.models.linked.folder import read_linked

    return read_linked(folder, LinkedSynthesizer)


def _key_spaces(frames, relations: Relations, schemas: Mapping[str, Schema]) -> dict[str, dict[str, KeySpace]]:
    """Per table, the key space of its primary key and of any other identifier column (not a foreign key)."""
    spaces = {}
    for name, spec in relations.tables.items():
        foreign = {fk.column for fk in spec.foreign_keys}
        wanted = [c for c in schemas[name].columns
                  if c.name not in foreign and (c.name == spec.primary_key or c.kind == "id")]
        spaces[name] = {c.name: key_space(c, frames[name][c.name]) for c in wanted}
    return spaces


def _median_start(prepared, relations: Relations, name: str) -> float:
    """The start of a sequence whose parent's generated start is missing: the median real start."""
    parent = parent_key(relations, name).parent
    starts = to_numbers(prepared.orders[name].column.kind, prepared.frames[parent][start_name(name)], unit="ns")
    return float(np.nanmedian(starts)) if np.isfinite(starts).any() else 0.0


def _tagged(progress, table: str):
    if progress is None:
        return None
    return lambda record: progress({"table": table, **record})
