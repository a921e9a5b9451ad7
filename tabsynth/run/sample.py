"""`tabsynth sample`: rows of a saved model folder, streamed to one file in chunks, outside the release gate.

Kept apart from `run.fit` so that sampling imports only what a saved model needs (not the fit plan's sources,
ledger and privacy accounting)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.io.atomic import atomic_file, atomic_write_text
from tabsynth.io.files import FORMATS, file_sha256
from tabsynth.io.stream import write_chunks
from tabsynth.models.base import is_private, load_model
from tabsynth.run.options import SampleOptions
from tabsynth.sample.identifiers import add_identifiers, key_bijections
from tabsynth.table.schema import Schema

CHUNK_ROWS = 1 << 19  # rows drawn, given identifiers and written (one Parquet row group) at a time
UNGATED_SUFFIX = ".UNGATED.txt"


def ungated_note(out: Path) -> Path:
    """The note beside a sampled file saying that no gate checked it."""
    return out.with_name(out.name + UNGATED_SUFFIX)


def sample_file(options: SampleOptions, progress=None, chunk_rows: int = CHUNK_ROWS) -> int:
    """Sample a saved model into one file (format from its suffix), streamed in chunks of `chunk_rows` rows and
    published atomically with its UNGATED note; returns the row count.

    No gate runs here: the model was fitted on every row of its data, so no holdout is left for the privacy
    checks to compare with, and a gate run against training rows would pass copies as chance. The note
    (bound to the file by its SHA-256) says so and how to check the rows before sharing them.
    """
    out, fmt = _check_output(options)
    model, schema = load_model(options.model_dir)
    n = rows_to_sample(options.rows, model)
    chunks = synthetic_chunks(model, schema, n, np.random.default_rng(options.seed), where=options.where,
                              rebalance=options.rebalance, chunk_rows=chunk_rows, progress=progress)
    with atomic_file(out) as partial:
        written = write_chunks(chunks, partial, fmt, schema.datetime_formats())
        atomic_write_text(ungated_note(out), _ungated_text(options, model, out, file_sha256(partial), written))
    return written


def synthetic_chunks(model, schema: Schema, n: int, rng: np.random.Generator, *, where: str | None = None,
                     rebalance: str | None = None, chunk_rows: int = CHUNK_ROWS, progress=None
                     ) -> Iterator[pd.DataFrame]:
    """`n` rows as `draw` makes them, in chunks of `chunk_rows`: each chunk from its own generator spawned from
    `rng`, its keys unique across all chunks, a --where condition met and a --rebalance share kept in every
    chunk (the class's rows spread so that the total is round(n * share), as in one draw)."""
    say = progress or (lambda *_: None)
    condition = _condition(where, schema)
    column, value, share = _rebalance_request(where, rebalance)
    keys = key_bijections(schema, rng)
    starts = range(0, max(n, 1), chunk_rows)
    for start, chunk_rng in zip(starts, rng.spawn(len(starts)), strict=True):
        count = min(chunk_rows, n - start)
        request = None if rebalance is None else (column, value, _chunk_share(share, start, count))
        modelled = _modelled(model, count, chunk_rng, condition, request, categorical=True)
        yield add_identifiers(modelled, schema, count, chunk_rng, keys=keys, offset=start)
        say("sampling", (start + count) / max(n, 1))


def draw(model, schema: Schema, n: int, rng: np.random.Generator, *, where: str | None = None,
         rebalance: str | None = None, avoid: frozenset[str] = frozenset()) -> pd.DataFrame:
    """`n` rows of a fitted model in one frame: plain, meeting a --where condition, or with a class's share set
    by --rebalance (COLUMN=VALUE=SHARE or COLUMN=SHARE); keys regenerated unique and PII faked (none equal to a
    value in `avoid`). Nothing here is gated."""
    condition = _condition(where, schema)
    column, value, share = _rebalance_request(where, rebalance)
    request = None if rebalance is None else (column, value, share)
    return add_identifiers(_modelled(model, n, rng, condition, request), schema, n, rng, avoid=avoid)


def rows_to_sample(rows: int | None, model) -> int:
    """`rows` checked, or a DP model's noisy row count when none is given."""
    if rows is not None:
        if rows < 1:
            raise InputError(f"--rows must be a positive number, got {rows}")
        return rows
    if is_private(model):
        return int(model.rows_)  # the noisy total: the true count is not known to a DP model
    raise InputError("give --rows (a non-DP model folder does not record how many rows it was fitted on)")


def _modelled(model, n: int, rng: np.random.Generator, condition, request: tuple | None, *,
              categorical: bool = False) -> pd.DataFrame:
    from tabsynth.sample import conditional as sampling

    if request is not None:
        return sampling.rebalance(model, n, *request, rng)
    if condition is not None:
        return sampling.sample_where(model, n, condition, rng)
    if categorical and getattr(model, "samples_categorical", False):
        return model.sample(n, rng=rng, categorical=True)  # text as Categoricals: Arrow dictionaries when written
    return model.sample(n, rng=rng)


def _condition(where: str | None, schema: Schema):
    if not where:
        return None
    from tabsynth.rules.parser import parse_condition

    return parse_condition(where, schema)


def _rebalance_request(where: str | None, rebalance: str | None) -> tuple:
    """(column, value, share) of a --rebalance, or Nones; --where and --rebalance together are refused."""
    if where and rebalance:
        raise InputError("use --where or --rebalance, not both")
    if not rebalance:
        return None, None, None
    from tabsynth.sample.conditional import parse_rebalance

    return parse_rebalance(rebalance)


def _chunk_share(share: float, start: int, count: int) -> float:
    """The share that gives a chunk rows start..start+count-1 its part of round(n * share) class rows."""
    hits = round((start + count) * share) - round(start * share)
    return hits / count if count else share


def _check_output(options: SampleOptions) -> tuple[Path, str]:
    out = Path(options.out)
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"--out must end in .{' or .'.join(FORMATS)}, got {out.name!r}")
    for path in (out, ungated_note(out)):
        if path.exists() and not options.overwrite:
            raise InputError(f"{path} already exists (use --overwrite)")
    _rebalance_request(options.where, options.rebalance)
    return out, fmt


def _ungated_text(options: SampleOptions, model, out: Path, sha256: str, rows: int) -> str:
    how = (f"--rebalance {options.rebalance}" if options.rebalance else f"--where {options.where}" if options.where
           else "plain sampling")
    return (f"NOT GATED: no release policy checked the rows of {out.name}.\n"
            f"file: {out.name} (sha256 {sha256}), {rows:,} rows\n"
            f"from: model folder {options.model_dir} (model {model.name!r}), {how}\n\n"
            "`tabsynth sample` draws from a model fitted on every row of its data, so no holdout is left for the\n"
            "privacy checks (copies, distance to closest record, membership) to compare with. Before sharing\n"
            "these rows, check them against rows the model never saw:\n"
            f"  tabsynth validate TRAINING_DATA {out.name} --holdout UNSEEN_ROWS --policy POLICY\n"
            "or publish through `tabsynth release`, which keeps a holdout and gates.\n")
