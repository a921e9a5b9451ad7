"""Linked tables: a dataset of tables joined by primary and foreign keys, with an order column per child.

A table's `path` is a CSV file, a Parquet file or folder, or a database URL; the table read from a URL is the
one after `#` (`postgresql://me@db/clinic#public.visits`), else the table of the dataset's name.

The privacy unit of a dataset is the person: one row of the root table (the one table that references no
other) and every row that hangs from it, at any depth. `Relations` holds the shape only (names, keys, order);
the rows travel beside it as `{table name: DataFrame}`.

    tables:
      patients: {path: patients.csv, primary_key: id}
      visits:   {path: visits.csv, primary_key: visit_id, order_by: date,
                 foreign_keys: [{column: patient_id, references: patients.id}]}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydantic
import yaml

from tabsynth.errors import InputError, SchemaError
from tabsynth.io import sql
from tabsynth.io.atomic import atomic_write_text
from tabsynth.io.files import read_table, read_yaml


@dataclass(frozen=True)
class ForeignKey:
    column: str  # in the child table
    parent: str  # the parent table's name
    parent_column: str  # the parent's primary key

    def __str__(self) -> str:
        return f"{self.column} -> {self.parent}.{self.parent_column}"


@dataclass(frozen=True)
class TableSpec:
    name: str
    path: str | None = None  # a file, a Parquet folder or a SQL URL; None when the rows are given directly
    primary_key: str | None = None
    foreign_keys: tuple[ForeignKey, ...] = ()
    order_by: str | None = None  # event time (or position) of the rows of one parent
    schema: str | None = None  # this table's schema YAML, if the steward wrote one
    max_events: int | None = None  # a child's rows per person a per-person DP release keeps (public, declared)


@dataclass(frozen=True)
class Relations:
    tables: Mapping[str, TableSpec] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.tables)

    def root(self) -> str:
        """The person table: the only table that references no other."""
        roots = [n for n, t in self.tables.items() if not t.foreign_keys]
        if len(roots) != 1:
            found = ", ".join(roots) or "none (every table references another)"
            raise SchemaError(f"a dataset needs exactly one table that references no other (the person); "
                              f"found {found}")
        return roots[0]

    def children(self, name: str) -> list[str]:
        return [n for n, t in self.tables.items() if any(fk.parent == name for fk in t.foreign_keys)]

    def parents_first(self) -> list[str]:
        """Every table after the tables it references; a cycle of keys is a SchemaError."""
        done: list[str] = []
        pending = dict(self.tables)
        while pending:
            ready = [n for n, t in pending.items() if all(fk.parent in done for fk in t.foreign_keys)]
            if not ready:
                raise SchemaError(f"the foreign keys form a cycle: {' -> '.join(sorted(pending))}")
            done.extend(ready)
            for n in ready:
                del pending[n]
        return done

    def check(self) -> Relations:
        """One SchemaError listing every problem of the declaration itself (not of the rows)."""
        problems = []
        for t in self.tables.values():
            for fk in t.foreign_keys:
                parent = self.tables.get(fk.parent)
                if parent is None:
                    problems.append(f"{t.name}.{fk.column} references unknown table {fk.parent!r}")
                elif parent.primary_key != fk.parent_column:
                    problems.append(f"{t.name}.{fk.column} references {fk.parent}.{fk.parent_column}, "
                                    f"which is not {fk.parent}'s primary key")
        if problems:
            raise SchemaError(*problems)
        self.parents_first()
        self.root()
        return self


class _ForeignKeyEntry(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    column: str
    references: str  # "table.column"


class _TableEntry(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    path: str | None = None
    primary_key: str | None = None
    foreign_keys: list[_ForeignKeyEntry] = []
    order_by: str | None = None
    schema_: str | None = pydantic.Field(default=None, alias="schema")
    max_events: pydantic.PositiveInt | None = None


class _DatasetFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    tables: dict[str, _TableEntry]


def relations_from_dict(raw: object, where: str = "dataset") -> Relations:
    try:
        parsed = _DatasetFile.model_validate(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"])
        raise SchemaError(f"{where}: {at}: {first['msg']}") from None
    tables = {}
    for name, entry in parsed.tables.items():
        keys = []
        for fk in entry.foreign_keys:
            parent, _, column = fk.references.partition(".")
            if not column:
                raise SchemaError(f"{where}: {name}.{fk.column}: references must read table.column, "
                                  f"got {fk.references!r}")
            keys.append(ForeignKey(fk.column, parent, column))
        tables[name] = TableSpec(name, entry.path, entry.primary_key, tuple(keys), entry.order_by, entry.schema_,
                                 entry.max_events)
    return Relations(tables).check()


def read_relations(path: str | Path) -> Relations:
    """A dataset YAML; relative table paths are resolved against the YAML's folder."""
    path = Path(path)
    relations = relations_from_dict(read_yaml(path, "dataset", SchemaError), where=path.name)
    resolved = {}
    for name, t in relations.tables.items():
        table_path, schema_path = (_beside(path, p) for p in (t.path, t.schema))
        resolved[name] = dataclasses.replace(t, path=table_path, schema=schema_path)
    return Relations(resolved)


def _beside(yaml_path: Path, path: str | None) -> str | None:
    """A path relative to the dataset YAML's folder, made usable from anywhere (URLs and absolute paths stay)."""
    if path and "://" not in path and not Path(path).is_absolute():
        return str(yaml_path.parent / path)
    return path


def read_dataset(relations: Relations) -> dict[str, pd.DataFrame]:
    """`{table name: rows}` for every table, with every key checked."""
    missing = [name for name, t in relations.tables.items() if not t.path]
    if missing:
        raise SchemaError(*[f"{name}: no path to read the table from" for name in missing])
    frames = {name: read_one(t) for name, t in relations.tables.items()}
    check_rows(relations, frames)
    return frames


def read_one(table: TableSpec) -> pd.DataFrame:
    """One table's rows from its file or database table; a failure (a missing file, an unknown table) is one
    InputError line naming the table."""
    try:
        if not sql.is_url(table.path):
            return read_table(table.path)
        url, _, name = table.path.partition("#")
        return sql.read_source(sql.open_source(url, table=name or table.name))
    except InputError as exc:
        raise InputError(*(f"table {table.name}: {line}" for line in exc.problems)) from None


def relations_to_dict(relations: Relations, folder: str | Path | None = None) -> dict:
    """The dataset YAML's content: table paths inside `folder` relative to it, database URLs without password."""
    tables = {}
    for name, t in relations.tables.items():
        entry = {"path": _shareable_path(t.path, folder), "primary_key": t.primary_key,
                 "foreign_keys": [{"column": fk.column, "references": f"{fk.parent}.{fk.parent_column}"}
                                  for fk in t.foreign_keys] or None,
                 "order_by": t.order_by, "schema": _shareable_path(t.schema, folder), "max_events": t.max_events}
        tables[name] = {key: value for key, value in entry.items() if value is not None}
    return {"tables": tables}


def save_relations(relations: Relations, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the dataset YAML in one rename (read back by `read_relations`); an existing file only with
    `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists (use --overwrite, or --dataset-out for another file)")
    text = yaml.safe_dump(relations_to_dict(relations, path.resolve().parent), sort_keys=False, width=120)
    atomic_write_text(path, text)
    return path


def _shareable_path(path: str | None, folder: str | Path | None) -> str | None:
    if path is None:
        return None
    if sql.is_url(path):
        url, _, table = path.partition("#")
        return sql.public_url(sql.parse_url(url)) + (f"#{table}" if table else "")
    if folder is None:
        return path
    absolute = Path(path).resolve()
    inside = Path(folder).resolve() in absolute.parents
    return Path(os.path.relpath(absolute, folder)).as_posix() if inside else str(absolute)


def check_rows(relations: Relations, frames: Mapping[str, pd.DataFrame]) -> None:
    """One SchemaError naming every broken key: missing tables or columns, duplicate or missing primary keys,
    foreign keys with no parent, order columns that mix types."""
    problems = []
    for name, t in relations.tables.items():
        frame = frames.get(name)
        if frame is None:
            problems.append(f"table {name!r} is declared but has no rows")
            continue
        needed = [c for c in (t.primary_key, t.order_by, *(fk.column for fk in t.foreign_keys)) if c]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            problems.append(f"{name}: no column {', '.join(missing)}")
            continue
        problems += _key_problems(name, t, frame, frames, relations)
    if problems:
        raise SchemaError(*problems)


def _key_problems(name, t: TableSpec, frame, frames, relations) -> list[str]:
    out = []
    if t.primary_key:
        key = frame[t.primary_key]
        if key.isna().any():
            out.append(f"{name}.{t.primary_key}: {int(key.isna().sum())} rows have no key")
        if key.duplicated().any():
            out.append(f"{name}.{t.primary_key}: {int(key.duplicated().sum())} keys repeat (a primary key "
                       f"is unique)")
    for fk in t.foreign_keys:
        parent = frames.get(fk.parent)
        if parent is None or fk.parent_column not in parent.columns:
            continue
        values = frame[fk.column]
        orphans = ~values.isin(parent[fk.parent_column]) | values.isna()
        if orphans.any():
            out.append(f"{name}.{fk.column}: {int(orphans.sum())} rows reference no {fk.parent} row")
    if t.order_by and _mixed_types(frame[t.order_by]):
        out.append(f"{name}.{t.order_by}: the order column mixes types (numbers, dates and text); "
                   f"it must hold one")
    return out


def _mixed_types(values: pd.Series) -> bool:
    """Python values of several types, or text (as a CSV gives it) of which some reads as numbers and some not."""
    if values.dtype != object:
        return False
    present = values.dropna()
    kinds = {type(v).__name__ for v in present}
    if len(kinds) > 1:
        return True
    if kinds != {"str"}:
        return False
    numbers = pd.to_numeric(present, errors="coerce").notna()
    return bool(numbers.any() and not numbers.all())
