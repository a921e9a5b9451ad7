"""Write a table that arrives in chunks (DataFrames) to one Parquet or CSV file, holding two chunks at a time.

Parquet gets one row group per chunk, typed by the first chunk (a column empty there is text); CSV gets the
header once and date columns as text in their schema's formats. A chunk is converted and written on a second
thread while the next one is drawn (Arrow and most of numpy release the GIL), so drawing and writing overlap.
The caller makes the write atomic (it writes to a temporary path that `atomic_file` renames into place)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tabsynth.io.files import csv_ready


def write_chunks(chunks: Iterable[pd.DataFrame], path: Path, fmt: str,
                 datetime_formats: dict[str, str] | None = None) -> int:
    """Write every chunk to `path` (`fmt` "parquet" or "csv") in order; returns the rows written."""
    if fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as handle:
            return _pipelined(chunks, _CsvChunks(handle, datetime_formats or {}).write)
    parquet = _ParquetChunks(path)
    try:
        return _pipelined(chunks, parquet.write)
    finally:
        parquet.close()


def _pipelined(chunks: Iterable[pd.DataFrame], write: Callable[[pd.DataFrame], None]) -> int:
    """Each chunk written by `write` on one worker thread, in order, while the next chunk is drawn; an error on
    either side stops both and is raised here."""
    written, pending = 0, None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tabsynth-write") as worker:
        try:
            for frame in chunks:
                _wait(pending)
                pending = worker.submit(write, frame)
                written += len(frame)
        finally:
            _wait(pending)
    return written


def _wait(pending: Future | None) -> None:
    if pending is not None:
        pending.result()


class _ParquetChunks:
    """One row group per chunk; the first chunk's types are the file's."""

    def __init__(self, path: Path):
        self.path, self.schema, self.writer = path, None, None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.schema = _file_schema(table.schema)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table.cast(self.schema), row_group_size=max(len(table), 1))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _CsvChunks:
    """The header with the first chunk; dates as text in their formats."""

    def __init__(self, handle, datetime_formats: dict[str, str]):
        self.handle, self.datetime_formats, self.first = handle, datetime_formats, True

    def write(self, frame: pd.DataFrame) -> None:
        csv_ready(frame, self.datetime_formats).to_csv(self.handle, header=self.first, index=False)
        self.first = False


def _file_schema(schema: pa.Schema) -> pa.Schema:
    """The first chunk's schema as the file's: a column with no value there (all None) is text, so later chunks'
    values fit; a Categorical's dictionary is plain values, described to pandas as an object column (the file
    reads back as the columns of `as_text_columns(frame)` would)."""
    fields, plain = [], set()
    for field in schema:
        if pa.types.is_dictionary(field.type):
            field, _ = field.with_type(field.type.value_type), plain.add(field.name)
        fields.append(field.with_type(pa.string()) if pa.types.is_null(field.type) else field)
    return pa.schema(fields, metadata=_plain_pandas_metadata(schema.metadata, plain))


def _plain_pandas_metadata(metadata: dict | None, plain: set[str]) -> dict | None:
    if not metadata or b"pandas" not in metadata or not plain:
        return metadata
    described = json.loads(metadata[b"pandas"])
    for column in described["columns"]:
        if column["name"] in plain:
            column.update(pandas_type="unicode", numpy_type="object", metadata=None)
    return {**metadata, b"pandas": json.dumps(described).encode()}
