"""`release` for tables larger than memory, through DuckDB: the same stages as `tabsynth.run.release.release`, but
the private table is only ever scanned by DuckDB.

- schema: inferred from a random sample of rows (its observed facts are not used by DP models: Schema.public());
- split: a row is in the holdout when a hash of its values and a random salt falls below the holdout share, so
  the split is fixed by the salt (OS entropy, or the --seed) and never needs the rows in memory; exact duplicate
  rows always fall on the same side;
- fit: `dp-marginal` reads the training part through count queries (DuckDBCounts);
- sampling: streamed in chunks straight into the staging folder (bounded memory);
- validation: the usual checks, on random samples of the training part, the holdout and the synthetic rows; the
  sample sizes and the precision they give are in the manifest (`validation_sample`) and the report.
Only `dp-marginal` fits out of core.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.io.atomic import staged_directory
from tabsynth.io.files import file_sha256
from tabsynth.io.sql import SqlSource, public_url
from tabsynth.io.sql import source_name as sql_source_name
from tabsynth.io.stream import write_chunks
from tabsynth.metrics.checks import run_checks
from tabsynth.privacy.facts import sampled_facts
from tabsynth.publish import manifest as manifest_lib
from tabsynth.publish.folder import block, finish_folder
from tabsynth.publish.gate import evaluate
from tabsynth.run import auto
from tabsynth.run.options import Progress, ReleaseOptions, ReleaseResult
from tabsynth.run.plan import (
    Plan,
    check_fit_for_release,
    check_named_columns,
    check_options_for,
    debit_ledger,
    dp_warnings,
    output_schema,
    preflight,
    with_choice,
)
from tabsynth.sample.conditional import sample_valid
from tabsynth.sample.identifiers import add_identifiers, key_bijections
from tabsynth.scale.duckdb_counts import DuckDBCounts, DuckDBSession
from tabsynth.scale.duckdb_databases import attach
from tabsynth.scale.sql import DUCKDB
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema

SUPPORTED_MODELS = ("dp-marginal",)
CHUNK_ROWS = 1 << 19  # synthetic rows drawn and written (one Parquet row group) at a time
SCHEMA_SAMPLE_ROWS = 100_000
VALIDATION_ROWS = 50_000  # per part: training, holdout, synthetic
SPLIT_BUCKETS = 1_000_000  # resolution of the holdout share
Z95 = 1.959964


def release_out_of_core(options: ReleaseOptions, progress: Progress | None = None) -> ReleaseResult:
    """`tabsynth release --engine duckdb`: publish the folder only if the gate passes, else raise ReleaseBlocked."""
    say = progress or (lambda *_: None)
    if options.model == auto.AUTO:
        options = with_choice(options, auto.choose_model(dp=True, engine="duckdb"))
    if options.model not in SUPPORTED_MODELS:
        raise InputError(f"model {options.model!r} cannot fit out of core; with --engine duckdb use "
                         f"--model {' or '.join(SUPPORTED_MODELS)}")
    if options.out_table:
        raise InputError("--out-table is not available with --engine duckdb yet: the synthetic file is in the "
                         "release folder; load it into the database from there")
    plan = preflight(options)
    if plan.request is not None and plan.ledger_source is None:
        raise InputError(f"{sql_source_name(plan.source)}: with --engine duckdb, give --source-id to name this file "
                         "in the privacy ledger (the digest of its rows that names a file is taken in memory only)")
    with DuckDBSession() as session:  # its spill folder goes with it, after an error too
        return _release(options, plan, session, say)


def _release(options: ReleaseOptions, plan: Plan, session: DuckDBSession, say: Progress) -> ReleaseResult:
    rng = np.random.default_rng(options.seed)  # OS entropy unless the user asked for a seed
    say("reading a sample of the table", 0.02)
    source = _source_counts(plan.source, session)
    sample = source.sample_frame(SCHEMA_SAMPLE_ROWS, _seed(rng))
    schema = infer_schema(sample, user=plan.user_schema)
    check_fit_for_release(sample, schema, source.label)  # only its size and columns: at least MIN_ROWS rows?
    del sample
    check_named_columns(plan, schema)
    budget, ledger_record = debit_ledger(options, plan, say)
    schema, budget, facts = sampled_facts(source, SCHEMA_SAMPLE_ROWS, plan.user_schema, budget)
    train, holdout = split_counts(source, schema, plan.policy.holdout_share, salt=_seed(rng))
    say(f"fitting {options.model} through DuckDB", 0.1)
    started = time.perf_counter()
    plan.model.fit(train, schema, budget=budget, rng=rng)
    timings = {"fit_seconds": time.perf_counter() - started}
    with staged_directory(Path(options.out), overwrite=options.overwrite) as staging:
        data_name = f"synthetic.{options.fmt}"
        say("sampling", 0.5)
        started = time.perf_counter()
        sampling = _stream_synthetic(options, plan, schema, staging / data_name, rng)
        timings["sample_seconds"] = time.perf_counter() - started
        say("validating on samples", 0.72)
        samples, sample_record = validation_samples(train, holdout, staging / data_name, schema, rng)
        metrics = run_checks(*samples, schema, check_options_for(options, plan, schema))
        verdict = evaluate(plan.policy, metrics, private=plan.request is not None)
        manifest, internal = manifest_lib.build(
            options=options, schema=schema, policy=plan.policy, model=plan.model, verdict=verdict, metrics=metrics,
            input_info=_input_info(plan, source), split_info=_split_info(plan), timings=timings,
            sampling=sampling, ledger=ledger_record)
        manifest["validation_sample"] = sample_record
        manifest["schema_facts"] = facts
        manifest["warnings"] = dp_warnings(facts, plan.model)
        say("writing release", 0.85)
        if not verdict.passed:
            block(options, manifest, samples[0], samples[2], schema, verdict, internal,
                  hints=auto.blocked_hints([o.metric for o in verdict.failures()], options.model))
        finish_folder(staging, data_name, manifest, samples[0], samples[2], schema, sampling["rows"], internal)
    say("done", 1.0)
    return ReleaseResult(Path(options.out), verdict, manifest, None)


def _source_counts(source: Path | SqlSource, session: DuckDBSession) -> DuckDBCounts:
    """Counts over a file or folder, or over a PostgreSQL or SQLite table DuckDB scans in place."""
    connection = session.connection
    if isinstance(source, SqlSource):
        return DuckDBCounts.from_sql(connection, attach(connection, source), source.name)
    return DuckDBCounts(source, connection=connection, label=Path(source).name)


def split_counts(source: DuckDBCounts, schema: Schema, holdout_share: float,
                 salt: int) -> tuple[DuckDBCounts, DuckDBCounts]:
    """Training part and holdout as views of the source: hash(salt, every column) picks the side."""
    columns = ", ".join(DUCKDB.quote(name) for name in source.types)
    in_holdout = f"hash({int(salt)}, {columns}) % {SPLIT_BUCKETS} < {round(holdout_share * SPLIT_BUCKETS)}"
    formats = schema.datetime_formats()
    parts = []
    for name, keep in (("training part", f"NOT ({in_holdout})"), ("holdout", in_holdout)):
        view = f"(SELECT * FROM {source.source} AS _s WHERE {keep})"
        parts.append(DuckDBCounts.from_sql(source.connection, view, f"{source.label} ({name})", formats))
    return parts[0], parts[1]


def write_synthetic(draw: Callable[[int, int], pd.DataFrame], rows: int, path: Path, fmt: str = "parquet",
                    chunk_rows: int = CHUNK_ROWS, datetime_formats: dict[str, str] | None = None) -> int:
    """Write `rows` rows drawn chunk by chunk (`draw(count, offset)`) to a Parquet or CSV file: memory holds
    one chunk at a time. Returns the rows written."""
    chunks = (draw(min(chunk_rows, rows - offset), offset) for offset in range(0, max(rows, 1), chunk_rows))
    return write_chunks(chunks, path, fmt, datetime_formats)


def _stream_synthetic(options: ReleaseOptions, plan: Plan, schema: Schema, path: Path,
                      rng: np.random.Generator) -> dict:
    facts = output_schema(schema, private=True)
    n = options.rows or plan.model.rows_
    rejected, keys = 0, key_bijections(facts, rng)

    def draw(count: int, offset: int) -> pd.DataFrame:
        nonlocal rejected
        modelled, failed = sample_valid(plan.model, count, facts, list(plan.constraints), rng)
        rejected += failed
        return add_identifiers(modelled, facts, count, rng, keys=keys, offset=offset)

    formats = schema.datetime_formats()
    written = write_synthetic(draw, n, path, options.fmt, CHUNK_ROWS, formats)
    return {"rows": written, "rows_source": "--rows" if options.rows else "noisy total",
            "rejected_by_constraints": int(rejected), "chunk_rows": CHUNK_ROWS}


def validation_samples(train: DuckDBCounts, holdout: DuckDBCounts, synthetic_path: Path, schema: Schema,
                       rng: np.random.Generator) -> tuple[tuple[pd.DataFrame, ...], dict]:
    """Random samples of each part (conformed to the schema), and the manifest's record of them."""
    synthetic = DuckDBCounts(synthetic_path, connection=train.connection, label="synthetic rows")
    samples = tuple(conform(part.sample_frame(VALIDATION_ROWS, _seed(rng)), schema)
                    for part in (train, holdout, synthetic))
    if len(samples[0]) == 0 or len(samples[1]) == 0:
        raise InputError(f"{train.label}: too few rows to keep both a training part and a holdout")
    return samples, sample_record(VALIDATION_ROWS)


def sample_record(rows: int) -> dict:
    """What validating on samples means for the figures (the true sizes of the parts are withheld)."""
    margin = Z95 * 0.5 / math.sqrt(rows)
    note = (f"validation used uniform random samples of at most {rows:,} rows of the training part, the holdout and "
            f"the synthetic rows (all rows of a smaller part); a share computed on a sample is within "
            f"±{margin:.4f} of its full-table value with 95% confidence, so metrics differing by less than about "
            f"{margin:.3f} are not distinguishable; rare rows may be absent from a sample")
    return {"rows_per_part": rows, "method": "DuckDB reservoir sample without replacement",
            "share_margin_95": round(margin, 6), "note": note}


def _input_info(plan: Plan, source: DuckDBCounts) -> dict:
    """Where the rows came from; a file's SHA-256 (a table is not hashed: that would be one more full scan), which
    only the internal assessment keeps."""
    info = {"columns": len(source.types), "engine": "duckdb"}
    if isinstance(plan.source, SqlSource):
        return info | {"url": public_url(plan.source.url), "table": plan.source.name, "format": "database"}
    path = Path(plan.source)
    info |= {"path": str(path), "format": path.suffix.lstrip(".").lower() or "parquet folder"}
    if path.is_file():
        info["sha256"] = file_sha256(path)
    return info  # a DP release never states the true row count


def _split_info(plan: Plan) -> dict:
    return {"holdout_share": plan.policy.holdout_share,
            "method": "hash of each row's values and a random salt (duplicate rows fall on the same side)"}


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))
