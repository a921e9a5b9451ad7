"""Wires the stages: read → schema → split → fit → sample → validate → gate → release."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.errors import InputError, ReleaseBlocked
from tabsynth.infer import conform, infer_schema
from tabsynth.io.atomic import check_can_create, staged_directory
from tabsynth.io.files import FORMATS, file_sha256, read_table, write_table
from tabsynth.models.base import Synthesizer, create_model
from tabsynth.release import manifest as manifest_lib
from tabsynth.release.gate import Verdict, evaluate
from tabsynth.release.policy import load_policy
from tabsynth.release.report import write_report
from tabsynth.schema import Schema
from tabsynth.validate.fidelity import column_distances
from tabsynth.validate.risk import exact_copies

SAMPLE_CHUNK = 100_000
Progress = Callable[[str, float], None]  # (what is happening, share of the whole job done)


@dataclass
class ReleaseOptions:
    data: Path
    out: Path
    model: str = "copula"
    rows: int | None = None
    schema: Path | None = None
    seed: int | None = None
    policy: str = "default"
    fmt: str = "parquet"
    overwrite: bool = False
    model_params: dict = field(default_factory=dict)


@dataclass
class ReleaseResult:
    out: Path
    verdict: Verdict
    manifest: dict
    synthetic: pd.DataFrame


def release(options: ReleaseOptions, progress: Progress | None = None) -> ReleaseResult:
    """Run every stage; publish the folder only if the gate passes, else raise ReleaseBlocked."""
    say = progress or (lambda *_: None)
    policy, model, user_schema = _preflight(options)
    say("reading table", 0.02)
    raw = read_table(options.data)
    say("inferring schema", 0.08)
    schema = infer_schema(raw, user=user_schema)
    table = conform(raw, schema)
    rng = np.random.default_rng(options.seed)  # OS entropy unless the user asked for a seed
    train, holdout = split(table, policy.holdout_share, rng)
    say(f"fitting {options.model} on {len(train):,} rows", 0.12)
    started = time.perf_counter()
    model.fit(train, schema, rng=rng)
    fit_seconds = time.perf_counter() - started
    n_rows = len(train) if options.rows is None else options.rows
    started = time.perf_counter()
    synthetic = synthesize(model, schema, n_rows, rng, lambda done: say("sampling", 0.5 + 0.2 * done))
    sample_seconds = time.perf_counter() - started
    say("validating", 0.72)
    metrics = exact_copies(train, holdout, synthetic, schema) + column_distances(train, synthetic, schema)
    verdict = evaluate(policy, metrics)
    manifest = manifest_lib.build(
        options=options, schema=schema, policy=policy, model=model, verdict=verdict, metrics=metrics,
        input_info={"path": str(options.data), "sha256": file_sha256(options.data), "rows": len(raw),
                    "columns": raw.shape[1], "format": Path(options.data).suffix.lstrip(".").lower()},
        split_info={"train_rows": len(train), "holdout_rows": len(holdout), "holdout_share": policy.holdout_share},
        timings={"fit_seconds": fit_seconds, "sample_seconds": sample_seconds, "rows": len(synthetic)},
    )
    say("writing release", 0.85)
    if not verdict.passed:
        _block(options, manifest, train, synthetic, schema, verdict)
    out = _publish(options, manifest, train, synthetic, schema)
    say("done", 1.0)
    return ReleaseResult(out, verdict, manifest, synthetic)


def _preflight(options: ReleaseOptions):
    """Every check that needs no data, before any work: bad options fail in a second, not after fitting."""
    if options.fmt not in FORMATS:
        raise InputError(f"unknown format {options.fmt!r}; choose one of: {', '.join(FORMATS)}")
    if options.rows is not None and options.rows < 1:
        raise InputError(f"--rows must be a positive number, got {options.rows}")
    _check_output(Path(options.out), Path(options.data), options.overwrite)
    user_schema = None if options.schema is None else Schema.load(options.schema)
    return load_policy(options.policy), create_model(options.model, **options.model_params), user_schema


def _check_output(out: Path, data: Path, overwrite: bool) -> None:
    """--overwrite replaces an earlier release, never some other folder (such as the one holding the data)."""
    check_can_create(out, overwrite=overwrite)
    if not out.exists():
        return
    if out.resolve() in data.resolve().parents:
        raise InputError(f"the input file is inside the output folder {out}; choose another --out")
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise InputError(f"{out} is not a tabsynth release folder (no manifest.json); refusing to replace it")


def split(table: pd.DataFrame, holdout_share: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random train/holdout split; the holdout never trains and is the chance baseline for risk checks."""
    order = rng.permutation(len(table))
    n_holdout = int(round(len(table) * holdout_share)) if len(table) >= 2 else 0
    n_holdout = min(n_holdout, len(table) - 1)
    holdout = table.iloc[np.sort(order[:n_holdout])].reset_index(drop=True)
    train = table.iloc[np.sort(order[n_holdout:])].reset_index(drop=True)
    return train, holdout


def synthesize(model: Synthesizer, schema: Schema, n: int, rng: np.random.Generator,
               progress: Callable[[float], None] | None = None) -> pd.DataFrame:
    """Sample in chunks, then add identifier and PII columns that the model never saw."""
    chunks, done = [], 0
    while done < n or not chunks:
        size = min(SAMPLE_CHUNK, n - done)
        chunks.append(model.sample(size, rng=rng))
        done += size
        if progress:
            progress(done / max(n, 1))
    modelled = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return add_identifiers(modelled, schema, n, rng)


def add_identifiers(modelled: pd.DataFrame, schema: Schema, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Keys regenerated unique, PII replaced by fakes of the same kind or dropped; columns in table order."""
    columns = {}
    for column in schema.released():
        if column.kind == "id":
            numeric = pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(column.dtype))
            keys = pii.unique_keys(n, rng, integer=numeric)
            columns[column.name] = keys.astype(column.dtype) if numeric else _with_missing(keys, column.missing, rng)
        elif column.kind == "pii":
            columns[column.name] = _with_missing(pii.fake_values(column.pii, n, rng), column.missing, rng)
        else:
            columns[column.name] = modelled[column.name].reset_index(drop=True)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _with_missing(values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Blank out about `share` of the values, as the real column is blank."""
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out


def _publish(options, manifest, train, synthetic, schema) -> Path:
    data_name = f"synthetic.{options.fmt}"
    formats = {c.name: c.datetime_format for c in schema.columns if c.datetime_format}
    with staged_directory(Path(options.out), overwrite=options.overwrite) as staging:
        write_table(synthetic, staging / data_name, options.fmt, formats)
        manifest["outputs"] = {data_name: {"sha256": file_sha256(staging / data_name), "rows": len(synthetic)}}
        manifest_lib.write(staging / "manifest.json", manifest)
        write_report(staging / "report.html", manifest, train, synthetic, schema)
    return Path(options.out)


def _block(options, manifest, train, synthetic, schema, verdict: Verdict) -> NoReturn:
    """Nothing is released; the reviewer still gets the report explaining why, beside the output path."""
    report_path = Path(options.out).with_name(Path(options.out).name + ".blocked.html")
    write_report(report_path, manifest, train, synthetic, schema)
    lines = [f"release blocked by policy {manifest['policy']['name']!r}: {o.line()}" for o in verdict.failures()]
    raise ReleaseBlocked(*lines, f"nothing was released; see the report at {report_path}", report_path=report_path)
