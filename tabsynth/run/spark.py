"""`dp-marginal` on Spark: fit from a table only a cluster can scan, sample into a Parquet folder.

    spark-submit [spark options] .../tabsynth/scale/spark_job.py fit DATA --out MODEL_DIR --epsilon 1
    spark-submit [spark options] .../tabsynth/scale/spark_job.py sample MODEL_DIR --out FOLDER --partitions 64

(`python -m tabsynth.run.spark_job ...` runs the same on a local Spark.) The fit debits the privacy ledger
before Spark reads a row, then reads the table through count queries only; the model folder is written on the
driver. Sampling is post-processing of the released model and costs no budget.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from tabsynth.errors import InputError, TabsynthError
from tabsynth.io.atomic import check_can_create, staged_directory
from tabsynth.models.base import load_model, save_model
from tabsynth.models.dp_marginal import DPMarginal
from tabsynth.privacy import spending
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.facts import sampled_facts
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
    if source_id:
        return source_id
    if is_remote(data):
        raise InputError(f"{data}: give --source-id to name this source in the privacy ledger "
                         "(a cluster path cannot be hashed from the driver)")
    if not local_path(data).exists():
        raise InputError(f"input file not found: {local_path(data)}")
    raise InputError(f"{data}: give --source-id to name this table in the privacy ledger (the digest of its rows "
                     "that names a file is taken in memory only)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """dp-marginal over Spark: `fit` a model folder from a Parquet/CSV table, `sample` it into Parquet."""


@main.command()
@click.argument("data")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model folder to create (driver side).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path), help="Edited schema.yaml to use "
              f"[default: inferred from {SCHEMA_SAMPLE_ROWS:,} random rows].")
@click.option("--param", "params", multiple=True, help="dp-marginal parameter NAME=VALUE (repeatable).")
@click.option("--epsilon", type=float, help="Epsilon to spend [default: the policy's cap, else 1].")
@click.option("--delta", type=float, help="Delta to spend [default: 1e-9].")
@click.option("--policy", default="default", show_default=True, help="Policy whose privacy caps apply.")
@click.option("--source-id", help="Name of the source in the privacy ledger [required: the Spark job cannot take "
              "the digest of a table's rows that names a file in memory].")
@click.option("--ledger", help="Ledger database URL [default: $TABSYNTH_LEDGER or ~/.tabsynth/ledger.db].")
@click.option("--seed", type=int, help="Fix the row sample the schema is inferred from. DP noise always comes "
              "from the operating system's CSPRNG, never from a seed.")
@click.option("--master", help="Spark master, e.g. local[4] [default: the one spark-submit gives].")
@click.option("--overwrite", is_flag=True, help="Replace an earlier model folder.")
def fit(data, out, schema_path, params, epsilon, delta, policy, source_id, ledger, seed, master, overwrite) -> None:
    """Fit dp-marginal on DATA (Parquet file or folder, or CSV; a path or a URI such as s3a://...)."""
    from tabsynth.cli.model_cmds import parse_params
    from tabsynth.release.policy import load_policy

    model_params, rules = parse_params(params), load_policy(policy)
    request = spending.plan(True, rules, epsilon, delta, MODEL)
    user_schema = Schema.load(schema_path) if schema_path else None
    source = ledger_source(data, source_id)
    check_can_create(out, overwrite=overwrite)  # before Spark starts
    counts = SparkCounts(spark_session(master), data)
    schema = infer_spark_schema(counts, user_schema, seed)
    with staged_directory(out, overwrite=overwrite) as staging:
        budget, _ = spending.charge(request, source=spending.Source(source, Path(data).name), policy=rules,
                                    model=MODEL, ledger_url=ledger, note=f"spark fit to {out}")
        schema, budget, _ = sampled_facts(counts, SCHEMA_SAMPLE_ROWS, user_schema, budget)
        model = fit_from_counts(counts, schema, budget, model_params)
        save_model(model, schema, staging)
    spent = model.privacy_
    click.echo(f"privacy: epsilon {spent['epsilon']:.4g}, delta {spent['delta']:.3g} spent")
    click.echo(f"model {MODEL!r} saved to {out}/")


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--out", required=True, help="Parquet folder to write (a local path or a URI such as s3a://...).")
@click.option("--rows", type=int, help="Rows to sample [default: the model's noisy row count].")
@click.option("--partitions", type=int, default=8, show_default=True, help="Spark tasks, each with its own stream.")
@click.option("--seed", type=int, help="Reproducible sample [default: fresh OS entropy].")
@click.option("--master", help="Spark master, e.g. local[4] [default: the one spark-submit gives].")
@click.option("--overwrite", is_flag=True, help="Replace the output folder if it exists.")
def sample(model_dir, out, rows, partitions, seed, master, overwrite) -> None:
    """Sample a model folder into a Parquet folder over Spark tasks."""
    model, schema = load_model(model_dir)
    rows = int(model.rows_) if rows is None else rows
    written = sample_to_parquet(model, rows, out, spark_session(master), partitions, seed, schema=schema,
                                overwrite=overwrite)
    click.echo(f"{written:,} rows written to {out}/")


def run(argv: list[str] | None = None) -> None:
    """The command line, with tabsynth's errors as one line each and exit code 2 (no traceback)."""
    try:
        main.main(args=argv, prog_name="spark_job", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TabsynthError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    run()
