"""Which files make a dataset: several table files named on the command line, or a folder of them.

A table is a CSV file, a Parquet file or a Parquet folder; its name is the file's name without the suffix (the
folder's name for a Parquet folder). A folder is one Parquet table when it holds only Parquet part files of
one column layout (or Hive partitions, `year=2024/`); otherwise each CSV file, Parquet file and Parquet
subfolder in it is a table of the dataset.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from tabsynth.errors import InputError, first_line
from tabsynth.io.files import PARQUET_SUFFIXES, check_input_path, parquet_parts

TABLE_SUFFIXES = (".csv", *PARQUET_SUFFIXES)


def table_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def named_tables(paths: list[str | Path]) -> dict[str, Path]:
    """`{table name: path}` for table files given one by one; a missing file or a name given twice is an error."""
    tables: dict[str, Path] = {}
    for path in map(check_input_path, paths):
        name = table_name(path)
        if name in tables:
            raise InputError(f"two tables named {name!r}: {tables[name]} and {path}; rename one")
        tables[name] = path
    return tables


def folder_tables(folder: Path) -> dict[str, Path] | None:
    """The tables in a dataset folder, or None when the folder is itself one Parquet table."""
    if _is_one_parquet_table(folder):
        return None
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))
    found = [p for p in entries if (p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
             or (p.is_dir() and parquet_parts(p))]
    if not found:
        raise InputError(f"{folder} holds no tables (CSV files, Parquet files or Parquet folders)")
    return named_tables(found)


def _is_one_parquet_table(folder: Path) -> bool:
    visible = [p for p in folder.iterdir() if not p.name.startswith((".", "_"))]
    if any(p.is_dir() and "=" in p.name for p in visible):
        return True  # Hive partitions of one table
    if any(p.is_dir() or p.suffix.lower() not in PARQUET_SUFFIXES for p in visible):
        return False
    return bool(visible) and len({_column_names(p) for p in visible}) == 1


def _column_names(path: Path) -> tuple[str, ...]:
    try:
        return tuple(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises many unrelated types for a corrupt file
        raise InputError(f"{path.name}: cannot read as Parquet: {first_line(exc)}") from None
