"""Read CSV and Parquet tables (a Parquet file, or a folder of Parquet part files), write synthetic tables."""

from __future__ import annotations

import csv
import datetime
import hashlib
from pathlib import Path

import pandas as pd
import yaml

from tabsynth.errors import InputError, TabsynthError, first_line

# '?' marks missing values in several public tables (UCI Adult among them).
EXTRA_NA_VALUES = ["?"]
FORMATS = ("csv", "parquet")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a Parquet folder; every failure becomes one InputError line."""
    path = check_input_path(path)
    reader = _parquet if path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES else _csv
    frame = reader(path)
    if frame.shape[1] == 0:
        raise InputError(f"{path.name}: the table has no columns")
    if len(frame) == 0:
        raise InputError(f"{path.name}: the table has no rows (header only)")
    return frame


def check_input_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir() and not parquet_parts(path):
        raise InputError(f"input path is a folder without Parquet files (*.parquet): {path}")
    return path


def parquet_parts(folder: Path) -> list[Path]:
    """The data files of a Parquet dataset folder (Spark, pyarrow, DuckDB), in a stable order.

    Names starting with '.' or '_' (_SUCCESS, checksums, temporary files) are skipped, as pyarrow skips them.
    """
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
                  and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts))


def _csv(path: Path) -> pd.DataFrame:
    header = header_line(path)
    delimiter = csv_delimiter(header)
    names = next(csv.reader([header], delimiter=delimiter), [])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path.name}: duplicate column name(s) {', '.join(map(repr, dupes))}; rename them first")
    try:
        return pd.read_csv(path, sep=delimiter, na_values=EXTRA_NA_VALUES, skipinitialspace=True, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path.name}: the file is empty") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{path.name}: cannot parse as CSV: {first_line(exc)}") from None


def header_line(path: Path) -> str:
    """The first line of a UTF-8 text file, without its line break."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.readline().rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def csv_delimiter(header: str) -> str:
    """Comma, unless the header has none and another common delimiter splits it (European CSV, TSV)."""
    if "," in header:
        return ","
    for candidate in (";", "\t", "|"):
        if candidate in header:
            return candidate
    return ","


def _parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many unrelated types for a corrupt file
        raise InputError(f"{path.name}: cannot read as Parquet: {first_line(exc)}") from None
    return _dates_as_datetimes(_plain_partition_columns(frame))


def _dates_as_datetimes(frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet DATE columns arrive as Python `date` objects; as datetime64 they are dates to the schema, not
    categories (a date carries no time zone, so none is added)."""
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object:
            present = values.dropna()
            if len(present) and all(type(v) is datetime.date for v in present):
                frame[name] = pd.to_datetime(values)
    return frame


def _plain_partition_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Hive partition columns (`year=2024/`) come back as pandas categoricals; give them their values' dtype."""
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(frame[name].cat.categories.dtype)
    return frame


def read_yaml(path: Path, what: str, error: type[TabsynthError]):
    """Parse a YAML file safely (no object tags); a missing or malformed file is one `error` line."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{what} file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def file_sha256(path: str | Path) -> str:
    """A file's SHA-256; for a Parquet folder, the SHA-256 over each part file's relative name and SHA-256."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for part in parquet_parts(path):
            digest.update(f"{part.relative_to(path).as_posix()}\0{file_sha256(part)}\n".encode())
        return digest.hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_table(frame: pd.DataFrame, path: Path, fmt: str, datetime_formats: dict[str, str]) -> None:
    """Write into a staging folder (the caller's atomic rename publishes it)."""
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return
    csv_ready(frame, datetime_formats).to_csv(path, index=False)


def csv_ready(frame: pd.DataFrame, datetime_formats: dict[str, str]) -> pd.DataFrame:
    """A copy of `frame` with its date columns as text in their schema's formats, ready for `to_csv`."""
    out = frame.copy()
    for name, fmt_string in datetime_formats.items():
        if name in out:
            out[name] = out[name].dt.strftime(fmt_string)
    return out
