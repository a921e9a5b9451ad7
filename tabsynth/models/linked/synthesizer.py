"""`LinkedSynthesizer`: synthetic persons with every row that hangs from them (patients and their visits).

The root (person) table is fitted by a single-table model of the registry, with columns per child table holding
each person's number of children, the first child's order value and the time the children span, so counts and
attributes are learnt jointly. Each child table is a `SequenceModel`: its rows generated per parent, position by
position, given the parent's attributes, the position, the sequence length and the previous row; its own
children's counts are columns it generates, so deeper trees work the same way. Order columns are rebuilt from
generated gaps, scaled to the generated span; dates never before the order column are held as distances after it
(`offsets`); a category that never changes within a parent is held once per parent (`layout`). Keys are new (never
a real key: `keys`), and foreign keys point at the synthetic parents. PII columns are not modelled: they come back
as empty (None) columns, for the release to fill with fakes.
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
    hoisted_name,
    parent_key,
    prepare,
    span_name,
    start_name,
)
from tabsynth.models.registry import create_model, model_class
from tabsynth.table.dataset import Relations, check_rows
from tabsynth.table.schema import Schema
from tabsynth.table.values import as_dtype, to_numbers

LINKED_PARAMS = {"length_quantile": 0.999}  # sequences are cut at this quantile of the number of children
# Sequence models: fewer held-out rows make early stopping follow noise, so they train on all rows instead. The
# root keeps its model's own early stopping: trained to the end on ~100 persons, argn copies them (cgd: person DCR
# share 0.96 against 0.68).
MIN_VALIDATION_ROWS = 100


class LinkedSynthesizer:
    name = "linked"

    def __init__(self, model: str = "argn", **params):
        self.model = model
        self.params = params

    def fit(self, frames: Mapping[str, pd.DataFrame], relations: Relations, schemas: Mapping[str, Schema], *,
            rng: np.random.Generator | None = None, progress=None) -> LinkedSynthesizer:
        """Fit on every person; `progress(record)` hears each epoch of each table's model (the record as argn's:
        epoch, epochs, loss, val_loss) with the table's name under "table"."""
        relations.check()
        check_rows(relations, frames)
        rng = np.random.default_rng(rng)
        quantile = self.params.get("length_quantile", LINKED_PARAMS["length_quantile"])
        if not isinstance(quantile, (int, float)) or not 0 < quantile <= 1:
            raise ModelError(f"length_quantile must be a number in (0, 1], got {quantile!r}")
        prepared = prepare(frames, relations, schemas, quantile)
        self.relations_, self.schemas_ = relations, dict(schemas)
        self.caps_, self.orders_, self.offsets_ = prepared.caps, prepared.orders, prepared.offsets
        self.hoisted_, self.chained_ = prepared.hoisted, prepared.chained
        self.contexts_ = {name: _context(relations, schemas, prepared, name) for name in prepared.hoisted}
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
        context = set(self.contexts_[name])
        params = {"validation": _validation(len(prepared.frames[name]), 0.1)} | self.params
        return SequenceModel(**params).fit(
            prepared.frames[parent], [c for c in prepared.columns[parent] if c.name in context],
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
        events, rows, positions = self.sequences_[name].generate(parents[self.contexts_[name]], lengths, rng)
        for column in self.hoisted_[name]:
            values = parents[hoisted_name(name, column)].to_numpy()[rows]
            events[column] = as_dtype(pd.Series(values, name=column), self.schemas_[name][column].dtype)
        order = self.orders_.get(name)
        if order is not None:
            starts = self._start_numbers(parent, name, parents)[rows]
            gaps = self._gaps(name, events, positions)
            if span_name(name) in parents:
                spans = pd.to_numeric(parents[span_name(name)], errors="coerce").to_numpy(float)[rows]
                gaps = order.spread(gaps, positions, spans)
            events[order.column.name] = order.rebuild(starts, gaps, positions)
        return events, rows

    def _gaps(self, name: str, events: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        """Each row's gap after the previous row (in the order column's units): generated, or, for a chained
        table, the previous row's distance of the chained column (rows sorted by parent and position)."""
        order = self.orders_[name]
        if name not in self.chained_:
            return events.pop(GAP).to_numpy(float)
        offset = next(o for o in self.offsets_[name] if o.column.name == self.chained_[name])
        distances = np.clip(pd.to_numeric(events[offset.column.name], errors="coerce").to_numpy(float), 0, None)
        return np.where(positions == 0, 0.0, np.roll(distances, 1) * offset.unit / order.unit)

    def _start_numbers(self, parent: str, name: str, parents: pd.DataFrame) -> np.ndarray:
        """Each parent's first order value of table `name` (as `to_numbers`, ns), held absolute or as a distance
        after the parent's own order value."""
        offset = next((o for o in self.offsets_[parent] if o.column.name == start_name(name)), None)
        kind = "numerical" if offset else self.orders_[name].column.kind
        held = to_numbers(kind, parents[start_name(name)], unit="ns")
        held = np.where(np.isnan(held), self.starts_[name], held)  # a count but no start: the median start
        return offset.absolute(pd.Series(held), parents[offset.reference]) if offset else held

    def _with_keys(self, modelled: dict, parent_rows: dict, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        """Each table in its real column order: new keys, foreign keys to the synthetic parents, PII as None."""
        out = {}
        for name in self.relations_.parents_first():
            spec, frame = self.relations_.tables[name], modelled[name].copy()
            for offset in self.offsets_[name]:
                if offset.column.name in self.schemas_[name].names:  # not a child's start: that is not released
                    frame[offset.column.name] = offset.decode(frame[offset.column.name], frame[offset.reference])
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
    """The start of a sequence whose parent's generated start is missing: the median real start, as held (a
    number or date as `to_numbers` in ns, or a distance)."""
    parent = parent_key(relations, name).parent
    column = next(c for c in prepared.columns[parent] if c.name == start_name(name))
    starts = to_numbers(column.kind, prepared.frames[parent][start_name(name)], unit="ns")
    return float(np.nanmedian(starts)) if np.isfinite(starts).any() else 0.0


def _context(relations: Relations, schemas: Mapping[str, Schema], prepared, name: str) -> list[str]:
    """The parent's columns a sequence of table `name` is generated from: the parent's own attributes (less those
    hoisted to the grandparent) and the columns hoisted from `name`."""
    parent = parent_key(relations, name).parent
    own = {c.name for c in attribute_columns(relations, schemas[parent], parent)}
    own -= set(prepared.hoisted.get(parent, []))
    own |= {hoisted_name(name, column) for column in prepared.hoisted[name]}
    return [c.name for c in prepared.columns[parent] if c.name in own]


def _validation(rows: int, share: float) -> float:
    """The share of rows held out for early stopping, or 0 where it would hold out too few to tell."""
    return share if rows * share >= MIN_VALIDATION_ROWS else 0.0


def _tagged(progress, table: str):
    if progress is None:
        return None
    return lambda record: progress({"table": table, **record})
