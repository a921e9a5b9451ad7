"""`inspect` on linked tables: read a dataset (several table files, a folder of them, a dataset YAML, or a
database schema), take its keys as declared or guess them, and say what was found and why; or split one flat
table with several rows per person. Everything is read and checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from tabsynth.errors import InputError, SchemaError
from tabsynth.io import sql
from tabsynth.io.atomic import atomic_file
from tabsynth.io.files import read_table, write_table
from tabsynth.io.table_files import folder_tables, named_tables
from tabsynth.table.dataset import Relations, check_rows, read_dataset, read_relations, save_relations
from tabsynth.table.dataset_db import read_database
from tabsynth.table.links import Link, infer_links, measure_link
from tabsynth.table.order import REASONS, choose_order, order_kind
from tabsynth.table.repeated import find_repeated_keys, split_repeated_key

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class DatasetView:
    """A dataset and what the steward should read about it."""

    relations: Relations
    frames: dict[str, pd.DataFrame]
    origin: str  # where the keys come from
    links: tuple[Link, ...] = ()
    key_reasons: dict[str, str] = field(default_factory=dict)
    order_reasons: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    declared_in: Path | None = None  # the dataset YAML read, if any


def is_dataset(data: tuple[str, ...], table: str | None, query: str | None) -> bool:
    """Whether DATA names a dataset (not one table): several files, a dataset YAML, a folder of tables, or a
    database URL without --table or --query."""
    if len(data) != 1:
        return True
    only = data[0]
    if sql.is_url(only):
        return not (table or query)
    path = Path(only)
    return path.suffix.lower() in YAML_SUFFIXES or (path.is_dir() and folder_tables(path) is not None)


def inspect_dataset(data: tuple[str, ...], db_schema: str | None = None) -> DatasetView:
    if len(data) == 1 and sql.is_url(data[0]):
        relations, frames = read_database(data[0], db_schema)
        return _declared(relations, frames, f"declared by the database catalogue of {_public(data[0])}")
    if len(data) == 1 and Path(data[0]).suffix.lower() in YAML_SUFFIXES:
        relations = read_relations(data[0])
        return replace(_declared(relations, read_dataset(relations), f"declared in {data[0]}"),
                       declared_in=Path(data[0]))
    paths = folder_tables(Path(data[0])) if len(data) == 1 else named_tables(list(data))
    if len(paths) < 2:
        raise InputError(f"{data[0]} holds one table; inspect it on its own, or name its tables' files")
    frames = {name: read_table(path) for name, path in paths.items()}
    return _inferred(frames, paths)


def _declared(relations: Relations, frames, origin: str) -> DatasetView:
    links = tuple(measure_link(name, fk, frames) for name, t in relations.tables.items() for fk in t.foreign_keys)
    orders = {name: _order_reason(frames[name], t.order_by) for name, t in relations.tables.items()
              if t.foreign_keys}
    return DatasetView(relations, frames, origin, links, {name: "declared" for name in relations.tables}, orders)


def _order_reason(frame: pd.DataFrame, column: str | None) -> str:
    if column is None:
        return "none declared: rows keep their order as read"
    kind = order_kind(column, frame[column])
    return f"declared ({REASONS[kind]})" if kind else "declared"


def _inferred(frames: dict[str, pd.DataFrame], paths: dict[str, Path]) -> DatasetView:
    guess = infer_links(frames)
    _check_linked(guess.relations)
    tables = guess.relations.tables
    relations = Relations({name: replace(tables[name], path=str(paths[name]))
                           for name in guess.relations.parents_first()})
    orders = {name: choice.reason for name, choice in guess.orders.items()}
    return DatasetView(relations, frames, "guessed from the rows: confirm or edit them in the dataset YAML",
                       guess.links, guess.key_reasons, orders, tuple(guess.problems()))


def _check_linked(relations: Relations) -> None:
    roots = [name for name, t in relations.tables.items() if not t.foreign_keys]
    if len(roots) > 1:
        raise SchemaError(f"no foreign key was found linking {', '.join(roots)}: a dataset has one person table "
                          f"and every other table hangs from it; name the keys in a dataset YAML "
                          f"(tables: NAME: {{path, primary_key, foreign_keys, order_by}})")
    relations.check()


def _public(url: str) -> str:
    return sql.public_url(sql.parse_url(url))


def split_table(source, frame: pd.DataFrame, key: str) -> DatasetView:
    """A flat table with several rows per `key`, as a person table and an events table (not yet written)."""
    relations, frames = split_repeated_key(frame, key)
    check_rows(relations, frames)
    view = _declared(relations, frames, f"split from {sql.source_name(source)} by its repeated key {key}")
    reasons = {name: "the key split by" if t.primary_key == key else "a new event number, one per row"
               for name, t in relations.tables.items()}
    orders = {name: choose_order(frames[name], skip={t.primary_key, key}).reason
              for name, t in relations.tables.items() if t.foreign_keys}
    return replace(view, key_reasons=reasons, order_reasons=orders)


def write_split(view: DatasetView, source, dataset_out: Path, overwrite: bool) -> list[Path]:
    """The split's tables beside the dataset YAML (`STEM_persons.csv`, `STEM_events.csv`; Parquet for a Parquet
    or database source), then the YAML naming them. Every target is checked before the first is written."""
    stem = source.table if isinstance(source, sql.SqlSource) and source.table else Path(sql.source_name(source)).stem
    fmt = "csv" if isinstance(source, Path) and source.suffix.lower() == ".csv" else "parquet"
    folder = dataset_out.parent
    targets = {name: folder / f"{stem}_{name}.{fmt}" for name in view.relations.tables}
    taken = [str(p) for p in [*targets.values(), dataset_out] if p.exists()]
    if taken and not overwrite:
        raise InputError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''} "
                         f"(use --overwrite, or --dataset-out for another folder)")
    for name, path in targets.items():
        with atomic_file(path) as staged:
            write_table(view.frames[name], staged, fmt, {})
    tables = {name: replace(t, path=str(targets[name])) for name, t in view.relations.tables.items()}
    save_relations(Relations(tables), dataset_out, overwrite=True)
    return [*targets.values(), dataset_out]


def save_dataset(view: DatasetView, path: Path) -> None:
    """The dataset YAML, once `check_dataset_out` allowed it (written in one rename)."""
    save_relations(view.relations, path, overwrite=True)


def person_key_hint(frame: pd.DataFrame) -> str | None:
    """What to tell the steward of one table with several rows per person, if it has them."""
    found = find_repeated_keys(frame)
    if not found:
        return None
    return (f"{found[0].describe()}. The person, not the row, is the privacy unit: split it into a person table "
            f"and an events table with --split-by {found[0].column}")


def check_dataset_out(path: Path, view: DatasetView, overwrite: bool) -> None:
    """The dataset YAML may be written: not over an existing file without --overwrite, never over the YAML read."""
    if view.declared_in is not None and path.resolve() == view.declared_in.resolve():
        raise InputError(f"--dataset-out {path} is the dataset YAML being inspected; choose another file")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists (use --overwrite, or --dataset-out for another file)")
