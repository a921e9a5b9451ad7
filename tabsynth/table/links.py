"""Guess a dataset's keys from its rows, for the steward to confirm (`tabsynth inspect` prints the guess and
writes it as a dataset YAML to edit).

- A **primary key** is a column of integers or text, every value present and unique. A column that another
  table references wins; then a name that says key (`id`, `patient_id` in `patients`, `*_id`, `*key`, `*_no`,
  `tailnum`), then the first such column. Row numbers (`rownames`, `index`) come last.
- A **foreign key** is a child column whose name points at a parent's key (`patient_id` -> `patients.id`,
  `tailnum` -> `planes.tailnum`), of the same type, whose present values mostly lie among the parent's keys.
  The share that does is reported as it is: a guess is never called clean when some rows reference no parent.
  Values alone never make a link (integer columns such as ages would fall inside any run of ids).
- An **order column** per child table is chosen by `order.choose_order`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tabsynth import pii
from tabsynth.pii.names import name_words
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec
from tabsynth.table.order import OrderChoice, choose_order

MIN_CONTAINMENT = 0.5  # below this share of values found in the parent, a name match is a coincidence
KEY_SUFFIXES = ("id", "key", "no", "nr", "num", "number", "code")
GENERIC_KEYS = ("id", "key")
ROW_NUMBER_NAMES = ("rownames", "rowname", "row names", "index", "unnamed 0", "row", "rownum", "row number",
                    "level 0")


@dataclass(frozen=True)
class Link:
    """A foreign key with the evidence for it: the share of the child's present values found in the parent."""

    key: ForeignKey
    child: str
    found: int  # child rows whose value is a parent's key
    present: int  # child rows with a value
    missing: int  # child rows without one

    @property
    def share(self) -> float:
        return self.found / self.present if self.present else 0.0

    @property
    def orphans(self) -> int:
        return self.present - self.found + self.missing

    def describe(self) -> str:
        text = f"{self.child}.{self.key}: {self.share:.1%} of {self.present:,} values found in {self.key.parent}"
        if self.missing:
            text += f", {self.missing:,} rows have none"
        return text


@dataclass(frozen=True)
class Inference:
    relations: Relations
    links: tuple[Link, ...]
    orders: dict[str, OrderChoice]
    key_reasons: dict[str, str]

    def problems(self) -> list[str]:
        """What the steward must fix or confirm before the guess is a dataset: rows that reference no parent."""
        return [f"{link.child}.{link.key.column}: {link.orphans:,} of {link.present + link.missing:,} rows reference "
                f"no {link.key.parent} row ({link.missing:,} without a value); fix or drop them before a release, "
                f"which refuses them" for link in self.links if link.orphans]


def infer_relations(frames: dict[str, pd.DataFrame]) -> Relations:
    """The keys and order columns guessed from the rows (see the module docstring)."""
    return infer_links(frames).relations


def infer_links(frames: dict[str, pd.DataFrame]) -> Inference:
    candidates = {name: key_candidates(frame) for name, frame in frames.items()}
    links = [link for name, frame in frames.items() for link in _links_from(name, frame, frames, candidates)]
    primary, reasons = {}, {}
    for name in frames:
        referenced = [link.key.parent_column for link in links if link.key.parent == name]
        primary[name], reasons[name] = _choose_primary(name, candidates[name], referenced, links)
    links = [link for link in links if primary[link.key.parent] == link.key.parent_column]
    specs, orders = {}, {}
    for name, frame in frames.items():
        keys = tuple(link.key for link in links if link.child == name)
        if keys:
            used = {primary[name], *(k.column for k in keys)}
            orders[name] = choose_order(frame, skip=used)
        order = orders[name].column if name in orders else None
        specs[name] = TableSpec(name, primary_key=primary[name], foreign_keys=keys, order_by=order)
    return Inference(Relations(specs), tuple(links), orders, reasons)


def key_candidates(frame: pd.DataFrame) -> list[str]:
    """Columns that could be the primary key: integers or text, every value present and unique."""
    return [str(name) for name in frame.columns
            if _key_type(frame[name]) and frame[name].notna().all() and frame[name].is_unique]


def _key_type(values: pd.Series) -> str | None:
    """'int' or 'text' for a column that can hold keys (floats with whole values, as a CSV with gaps gives)."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_integer_dtype(values):
        return "int"
    present = values.dropna()
    if pd.api.types.is_float_dtype(values):
        return "int" if len(present) and (present == present.round()).all() else None
    if values.dtype == object and len(present) and present.map(lambda v: isinstance(v, str)).all():
        return "text"
    return None


def _links_from(child: str, frame: pd.DataFrame, frames, candidates) -> list[Link]:
    out = []
    for column in map(str, frame.columns):
        if is_row_number(column) or _key_type(frame[column]) is None:
            continue
        found = [measure_link(child, ForeignKey(column, parent, key), frames)
                 for parent in frames if parent != child for key in candidates[parent]
                 if _named_after(column, parent, key, repeats=not frame[column].is_unique)
                 and _key_type(frame[column]) == _key_type(frames[parent][key])]
        found = [link for link in found if link.present and link.share >= MIN_CONTAINMENT]
        if found:
            out.append(max(found, key=lambda link: link.share))
    return out


def measure_link(child: str, key: ForeignKey, frames: dict[str, pd.DataFrame]) -> Link:
    """The evidence for a declared foreign key: how many of the child's values are among the parent's keys."""
    values, keys = frames[child][key.column], frames[key.parent][key.parent_column]
    present = values.dropna()
    if _key_type(values) == _key_type(keys) == "int":
        present, keys = present.astype("int64"), keys.dropna().astype("int64")
    found = int(present.isin(set(keys)).sum())
    return Link(key, child, found, len(present), int(values.isna().sum()))


def _named_after(column: str, parent: str, key: str, repeats: bool) -> bool:
    """Whether a child column's name points at `parent.key`: the same name (a plain `id` only where it repeats in
    the child, so it is not the child's own key), or the parent's name with a key suffix (`patient_id`,
    `PatientID`, `patientid`) for a key of that or a plain name."""
    own, parent_key = _flat(column), _flat(key)
    if own == parent_key and (repeats or own not in GENERIC_KEYS) and not is_row_number(key):
        return True
    stem = _reference_stem(column)
    return stem is not None and stem in _table_stems(parent) and (
        parent_key in GENERIC_KEYS or _reference_stem(key) == stem or parent_key == own)


def _flat(name: str) -> str:
    return "".join(name_words(name))


def _reference_stem(column: str) -> str | None:
    """`patient_id` -> 'patient', `PatientNo` -> 'patient', `patientid` -> 'patient'; None for other names."""
    words = name_words(column)
    if len(words) >= 2 and words[-1] in KEY_SUFFIXES:
        return "".join(words[:-1])
    if len(words) == 1:
        for suffix in KEY_SUFFIXES:
            if words[0].endswith(suffix) and len(words[0]) > len(suffix) + 2:
                return words[0][: -len(suffix)]
    return None


def _table_stems(table: str) -> set[str]:
    """A table's name and its singular guesses: patients -> patient, addresses -> address, companies -> company."""
    flat = _flat(table)
    stems = {flat}
    if flat.endswith("ies"):
        stems.add(flat[:-3] + "y")
    if flat.endswith("es"):
        stems.add(flat[:-2])
    if flat.endswith("s"):
        stems.add(flat[:-1])
    return stems


def is_row_number(name: str) -> bool:
    return " ".join(name_words(name)) in ROW_NUMBER_NAMES or not str(name).strip()


def _choose_primary(table: str, candidates: list[str], referenced: list[str], links) -> tuple[str | None, str]:
    child_columns = {link.key.column for link in links if link.child == table}
    usable = [c for c in candidates if c not in child_columns]
    if referenced:
        best = max(dict.fromkeys(referenced), key=referenced.count)
        by = ", ".join(f"{link.child}.{link.key.column}" for link in links
                       if link.key.parent == table and link.key.parent_column == best)
        return best, f"unique and present in every row; referenced by {by}"
    if not usable:
        return None, "no column is unique and present in every row"
    best = max(usable, key=lambda c: (_key_name_score(table, c), -usable.index(c)))
    why = {3: "named as this table's key", 2: "named like a key", 1: "the first unique column",
           0: "row numbers only"}[_key_name_score(table, best)]
    return best, f"unique and present in every row; {why}"


def _key_name_score(table: str, column: str) -> int:
    if is_row_number(column):
        return 0
    if _flat(column) in GENERIC_KEYS or _reference_stem(column) in _table_stems(table):
        return 3
    if pii.is_key_name(column) or _reference_stem(column) is not None:
        return 2
    return 1
