"""`tabsynth fit` and `tabsynth sample`: a model folder as the unit of work, outside the release gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tabsynth.errors import InputError
from tabsynth.io import sql
from tabsynth.io.atomic import atomic_file, atomic_write_text, check_can_create, staged_directory
from tabsynth.io.files import FORMATS, file_sha256, write_table
from tabsynth.models.base import MODEL_FILE, create_model, is_private, load_model, save_model
from tabsynth.models.memory import check_memory
from tabsynth.privacy import spending
from tabsynth.privacy.facts import pay_for_facts
from tabsynth.release.policy import load_policy
from tabsynth.run.release import check_fit_for_release, conform_rows
from tabsynth.sample.identifiers import add_identifiers
from tabsynth.table.infer import infer_schema
from tabsynth.table.schema import Schema


@dataclass
class FitOptions:
    data: Path | str  # a file path, or a database URL read with `table` or `query`
    out: Path
    model: str = "copula"
    schema: Path | None = None
    seed: int | None = None
    epsilon: float | None = None
    delta: float | None = None
    policy: str = "default"
    source_id: str | None = None
    ledger: str | None = None
    overwrite: bool = False
    model_params: dict = field(default_factory=dict)
    table: str | None = None
    query: str | None = None


def fit_folder(options: FitOptions, progress=None) -> dict:
    """Fit on every row of DATA and save the model folder atomically; DP fits debit the ledger first."""
    say = progress or (lambda *_: None)
    _check_model_folder(Path(options.out), options.overwrite)
    policy = load_policy(options.policy)
    model = create_model(options.model, **options.model_params)
    request = spending.plan(is_private(model), policy, options.epsilon, options.delta, options.model)
    user_schema = Schema.load(options.schema) if options.schema else None
    source = sql.open_source(options.data, options.table, options.query)
    ledger_source = None if request is None else spending.declared_identity(source, options.source_id, policy)
    say("reading table", 0.02)
    raw = sql.read_source(source)
    schema = infer_schema(raw, user=user_schema)
    check_fit_for_release(raw, schema, sql.source_name(source))
    check_memory(model, schema, len(raw), options.model)
    budget, ledger = None, None
    if request is not None:
        budget, ledger = spending.charge(request, source=spending.ledger_source(source, ledger_source, raw),
                                         policy=policy, model=options.model, ledger_url=options.ledger,
                                         note=f"fit to {options.out}")
    say(f"fitting {options.model}", 0.1)
    if budget is not None:  # a DP model's schema facts: declared, or measured with DP from its budget
        schema, budget, _ = pay_for_facts(raw, user_schema, budget)
    model.fit(conform_rows(raw, schema, budget is not None), schema, budget=budget,
              rng=np.random.default_rng(options.seed))
    with staged_directory(Path(options.out), overwrite=options.overwrite) as staging:
        save_model(model, schema, staging)
    say("done", 1.0)
    return {"model": options.model, "out": str(options.out), "privacy": getattr(model, "privacy_", None),
            "ledger": ledger}


def _check_model_folder(out: Path, overwrite: bool) -> None:
    check_can_create(out, overwrite=overwrite)
    if out.exists() and any(out.iterdir()) and not (out / MODEL_FILE).is_file():
        raise InputError(f"{out} is not a tabsynth model folder (no {MODEL_FILE}); refusing to replace it")


@dataclass
class SampleOptions:
    model_dir: Path
    out: Path
    rows: int | None = None
    where: str | None = None
    rebalance: str | None = None
    seed: int | None = None
    overwrite: bool = False


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
    modelled = _draw(model, schema, n, options, rng)
    synthetic = add_identifiers(modelled, schema, n, rng)
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


def _draw(model, schema: Schema, n: int, options: SampleOptions, rng):
    from tabsynth.rules.conditions import parse_condition
    from tabsynth.sample import conditional as sampling

    if options.rebalance:
        column, value, share = sampling.parse_rebalance(options.rebalance)
        return sampling.rebalance(model, n, column, value, share, rng)
    if options.where:
        return sampling.sample_where(model, n, parse_condition(options.where, schema), rng)
    return model.sample(n, rng=rng)
