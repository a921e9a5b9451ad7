"""`tabsynth fit` and `tabsynth sample`: a model folder as the unit of work, outside the release gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tabsynth.errors import InputError
from tabsynth.io import sql
from tabsynth.io.atomic import check_can_create, staged_directory
from tabsynth.models.base import MODEL_FILE, is_private, load_model, save_model
from tabsynth.models.memory import check_memory
from tabsynth.run.options import FitOptions, Progress
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
from tabsynth.run.sample import rows_to_sample
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
        return rows_to_sample(rows, self.model)


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
