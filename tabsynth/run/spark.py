"""`dp-marginal` on Spark: fit from a table only a cluster can scan, sample into a Parquet folder.

The fit debits the privacy ledger before Spark reads a row, then reads the table through count queries only; the
model folder is written on the driver. Sampling is post-processing of the released model and costs no budget.
The command line over these functions, for `spark-submit`, is `tabsynth/cli/spark.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tabsynth.errors import InputError
from tabsynth.io.atomic import check_can_create, staged_directory
from tabsynth.models.base import load_model, save_model
from tabsynth.models.dp_marginal import DPMarginal
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.facts import sampled_facts
from tabsynth.run.options import FitOptions
from tabsynth.run.plan import check_named_columns, debit_ledger, plan_for
from tabsynth.scale.spark import SparkCounts, is_remote, local_path, sample_to_parquet, spark_session
from tabsynth.table.counts import Counts
from tabsynth.table.schema import Schema

SCHEMA_SAMPLE_ROWS = 10_000  # rows a schema is inferred from when none is given
MODEL = "dp-marginal"


def fit_from_counts(counts: Counts, schema: Schema, budget: Budget, params: dict | None = None) -> DPMarginal:
    """A `dp-marginal` fitted through Spark's count queries; only the released model comes back."""
    return DPMarginal(**(params or {})).fit(counts, schema, budget=budget)


def infer_spark_schema(counts: SparkCounts, user: Schema | None = None, seed: int | None = None) -> Schema:
    """Column kinds from a random sample of rows (the user's schema file wins where it names a column). A DP
    model keeps only the public part; bounds and categories it measures itself, paying from its budget."""
    from tabsynth.table.infer import infer_schema

    seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    return infer_schema(counts.sample_frame(SCHEMA_SAMPLE_ROWS, seed), user=user)


def ledger_source(data: str, source_id: str | None) -> str:
    """The name the ledger charges `data` under: `source_id`, which a Spark fit must give."""
    if source_id:
        return source_id
    if is_remote(data):
        raise InputError(f"{data}: give --source-id to name this source in the privacy ledger "
                         "(a cluster path cannot be hashed from the driver)")
    if not local_path(data).exists():
        raise InputError(f"input file not found: {local_path(data)}")
    raise InputError(f"{data}: give --source-id to name this table in the privacy ledger (the digest of its rows "
                     "that names a file is taken in memory only)")


def fit(data: str, out: Path, *, schema_path: Path | None = None, params: dict | None = None,
        epsilon: float | None = None, delta: float | None = None, policy: str = "default",
        source_id: str | None = None, ledger: str | None = None, seed: int | None = None,
        master: str | None = None, overwrite: bool = False, target: str | None = None) -> dict:
    """Fit dp-marginal on `data` (Parquet file or folder, or CSV; a path or a URI) and save the model folder
    `out` on the driver. `seed` fixes only the row sample a schema is inferred from, never DP noise; `master`
    None keeps the Spark master spark-submit gave; `target` (else the policy's) is the label column dp-marginal
    favours. Returns the spend, {"epsilon": ..., "delta": ...}."""
    options = FitOptions(data=data, out=out, model=MODEL, schema=schema_path, epsilon=epsilon, delta=delta,
                         policy=policy, source_id=source_id, ledger=ledger, model_params=dict(params or {}),
                         target=target)
    plan = plan_for(options, data)  # the plan of every fit: policy limits, the model, the ledger identity
    if plan.ledger_source is None:
        ledger_source(data, None)  # says why a Spark source needs --source-id
    check_can_create(out, overwrite=overwrite)  # before Spark starts
    counts = SparkCounts(spark_session(master), data)
    # A table Spark cannot read, or a target that is not one of its columns, fails before the debit.
    check_named_columns(plan, infer_spark_schema(counts, plan.user_schema, seed))
    with staged_directory(out, overwrite=overwrite) as staging:
        budget, _ = debit_ledger(options, plan, lambda *_: None, note="spark fit to")
        schema, budget, _ = sampled_facts(counts, SCHEMA_SAMPLE_ROWS, plan.user_schema, budget)
        model = plan.model.fit(counts, schema, budget=budget)
        save_model(model, schema, staging)
    return model.privacy_


def sample(model_dir: Path, out: str, *, rows: int | None = None, partitions: int = 8, seed: int | None = None,
           master: str | None = None, overwrite: bool = False) -> int:
    """Sample the model folder `model_dir` into the Parquet folder `out` (a local path or a URI) over
    `partitions` Spark tasks; `rows` defaults to the model's noisy row count. Returns the rows written."""
    model, schema = load_model(model_dir)
    rows = int(model.rows_) if rows is None else rows
    return sample_to_parquet(model, rows, out, spark_session(master), partitions, seed, schema=schema,
                             overwrite=overwrite)
