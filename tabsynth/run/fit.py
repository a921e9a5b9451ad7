"""`tabsynth fit` and `tabsynth sample`: a model folder as the unit of work, outside the release gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tabsynth.errors import InputError
from tabsynth.io import sql
from tabsynth.io.atomic import atomic_file, atomic_write_text, check_can_create, staged_directory
from tabsynth.io.files import FORMATS, file_sha256, write_table
from tabsynth.models.base import MODEL_FILE, is_private, load_model, save_model
from tabsynth.models.memory import check_memory
from tabsynth.run.options import FitOptions, Progress, SampleOptions
from tabsynth.run.plan import (
    check_named_columns,
    conform_rows,
    debit_ledger,
    plan_for,
    read_and_infer,
    real_pii,
    schema_for_fit,
    settle_model,
)
from tabsynth.sample.identifiers import add_identifiers
from tabsynth.table.schema import Schema


def fit_folder(options: FitOptions, progress: Progress | None = None) -> dict:
    """Fit on every row of DATA and save the model folder atomically; DP fits debit the ledger first."""
    _check_model_folder(Path(options.out), options.overwrite)
    fitted = fit_model(options, progress)
    save_folder(fitted, Path(options.out), options.overwrite)
    (progress or (lambda *_: None))("done", 1.0)
    return fitted.record


def save_folder(fitted: Fitted, out: Path, overwrite: bool = False) -> None:
    """The model folder (JSON + arrays, never pickle), published atomically."""
    _check_model_folder(out, overwrite)
    with staged_directory(out, overwrite=overwrite) as staging:
        save_model(fitted.model, fitted.schema, staging)


def load_folder(folder: Path) -> Fitted:
    """A saved model folder (its fit record and real PII values are not saved)."""
    model, schema = load_model(folder)
    return Fitted(model, schema, {"model": model.name, "privacy": getattr(model, "privacy_", None)})


@dataclass
class Fitted:
    model: object
    schema: Schema
    record: dict  # what the fit did: model, privacy spent, ledger entry, who chose the model
    real_pii: frozenset[str] = frozenset()  # a non-DP fit's real PII values, which no fake may equal (memory only)

    @property
    def private(self) -> bool:
        return is_private(self.model)

    def default_rows(self, rows: int | None) -> int:
        """`rows` checked, or a DP model's noisy row count when none is given."""
        return _rows(rows, self.model)


def fit_model(options: FitOptions, progress: Progress | None = None) -> Fitted:
    """The fitted model and the schema it was fitted with, on every row of DATA: the plan a release follows,
    without its split (no holdout: nothing fitted here is gated). A DP fit debits the ledger before reading."""
    say = progress or (lambda *_: None)
    plan = plan_for(options, sql.open_source(options.data, options.table, options.query))
    raw, schema = read_and_infer(plan, say)
    options, plan = settle_model(options, plan, schema, len(raw))
    if plan.request is not None:
        check_named_columns(plan, schema)  # a target the DP model cannot use costs nothing
    check_memory(plan.model, schema, len(raw), options.model)
    budget, ledger = debit_ledger(options, plan, say, raw, note="fit to")
    schema, budget, _ = schema_for_fit(raw, schema, plan, budget)
    say(f"fitting {options.model}", 0.1)
    plan.model.fit(conform_rows(raw, schema, budget is not None), schema, budget=budget,
                   rng=np.random.default_rng(options.seed))
    record = {"model": options.model, "out": None if options.out is None else str(options.out),
              "privacy": getattr(plan.model, "privacy_", None), "ledger": ledger, "model_choice": options.model_choice}
    return Fitted(plan.model, schema, record, real_pii(plan, schema, raw))


def _check_model_folder(out: Path, overwrite: bool) -> None:
    check_can_create(out, overwrite=overwrite)
    if out.exists() and any(out.iterdir()) and not (out / MODEL_FILE).is_file():
        raise InputError(f"{out} is not a tabsynth model folder (no {MODEL_FILE}); refusing to replace it")


UNGATED_SUFFIX = ".UNGATED.txt"


def ungated_note(out: Path) -> Path:
    """The note beside a sampled file saying that no gate checked it."""
    return out.with_name(out.name + UNGATED_SUFFIX)


def sample_file(options: SampleOptions, progress=None) -> int:
    """Sample a saved model into one file (format from its suffix), written atomically with its UNGATED note;
    returns the row count.

    No gate runs here: the model was fitted on every row of its data, so no holdout is left for the privacy
    checks to compare with, and a gate run against training rows would pass copies as chance. The note
    (bound to the file by its SHA-256) says so and how to check the rows before sharing them.
    """
    out = Path(options.out)
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"--out must end in .{' or .'.join(FORMATS)}, got {out.name!r}")
    for path in (out, ungated_note(out)):
        if path.exists() and not options.overwrite:
            raise InputError(f"{path} already exists (use --overwrite)")
    if options.where and options.rebalance:
        raise InputError("use --where or --rebalance, not both")
    model, schema = load_model(options.model_dir)
    n = _rows(options.rows, model)
    rng = np.random.default_rng(options.seed)
    synthetic = draw(model, schema, n, rng, where=options.where, rebalance=options.rebalance)
    formats = schema.datetime_formats()
    with atomic_file(out) as partial:
        write_table(synthetic, partial, fmt, formats)
        atomic_write_text(ungated_note(out), _ungated_text(options, model, out, file_sha256(partial), len(synthetic)))
    return len(synthetic)


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


def _rows(rows: int | None, model) -> int:
    if rows is not None:
        if rows < 1:
            raise InputError(f"--rows must be a positive number, got {rows}")
        return rows
    if is_private(model):
        return int(model.rows_)  # the noisy total: the true count is not known to a DP model
    raise InputError("give --rows (a non-DP model folder does not record how many rows it was fitted on)")


def draw(model, schema: Schema, n: int, rng: np.random.Generator, *, where: str | None = None,
         rebalance: str | None = None, avoid: frozenset[str] = frozenset()):
    """`n` rows of a fitted model: plain, meeting a --where condition, or with a class's share set by --rebalance
    (COLUMN=VALUE=SHARE or COLUMN=SHARE); keys regenerated unique and PII faked. Nothing here is gated."""
    from tabsynth.rules.parser import parse_condition
    from tabsynth.sample import conditional as sampling

    if where and rebalance:
        raise InputError("use --where or --rebalance, not both")
    if rebalance:
        column, value, share = sampling.parse_rebalance(rebalance)
        modelled = sampling.rebalance(model, n, column, value, share, rng)
    elif where:
        modelled = sampling.sample_where(model, n, parse_condition(where, schema), rng)
    else:
        modelled = model.sample(n, rng=rng)
    return add_identifiers(modelled, schema, n, rng, avoid=avoid)
