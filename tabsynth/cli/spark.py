"""`dp-marginal` over Spark, as a command line for `spark-submit` (the workflow is `tabsynth.run.spark`).

    spark-submit [spark options] .../tabsynth/cli/spark.py fit DATA --out MODEL_DIR --epsilon 1 --source-id NAME
    spark-submit [spark options] .../tabsynth/cli/spark.py sample MODEL_DIR --out FOLDER --partitions 64

(`python -m tabsynth.cli.spark ...` runs the same on a local Spark.) spark-submit runs this file as a plain
script, so it imports by absolute names only; Spark and the model load when a command runs, not for --help.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tabsynth.cli.options import parse_params
from tabsynth.errors import TabsynthError

PATH = click.Path(path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """dp-marginal over Spark: `fit` a model folder from a Parquet/CSV table, `sample` it into Parquet."""


@main.command()
@click.argument("data")
@click.option("--out", type=PATH, required=True, help="Model folder to create (driver side).")
@click.option("--schema", "schema_path", type=PATH, help="Edited schema.yaml to use "
              "[default: inferred from 10,000 random rows].")  # tabsynth.run.spark.SCHEMA_SAMPLE_ROWS
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
@click.option("--target", help="Label column whose marginals dp-marginal favours [default: the policy's].")
def fit(data, out, schema_path, params, epsilon, delta, policy, source_id, ledger, seed, master, overwrite,
        target) -> None:
    """Fit dp-marginal on DATA (Parquet file or folder, or CSV; a path or a URI such as s3a://...)."""
    from tabsynth.run import spark

    spent = spark.fit(data, out, schema_path=schema_path, params=parse_params(params), epsilon=epsilon, delta=delta,
                      policy=policy, source_id=source_id, ledger=ledger, seed=seed, master=master,
                      overwrite=overwrite, target=target)
    click.echo(f"privacy: epsilon {spent['epsilon']:.4g}, delta {spent['delta']:.3g} spent")
    click.echo(f"model {spark.MODEL!r} saved to {out}/")


@main.command()
@click.argument("model_dir", type=PATH)
@click.option("--out", required=True, help="Parquet folder to write (a local path or a URI such as s3a://...).")
@click.option("--rows", type=int, help="Rows to sample [default: the model's noisy row count].")
@click.option("--partitions", type=int, default=8, show_default=True, help="Spark tasks, each with its own stream.")
@click.option("--seed", type=int, help="Reproducible sample [default: fresh OS entropy].")
@click.option("--master", help="Spark master, e.g. local[4] [default: the one spark-submit gives].")
@click.option("--overwrite", is_flag=True, help="Replace the output folder if it exists.")
def sample(model_dir, out, rows, partitions, seed, master, overwrite) -> None:
    """Sample a model folder into a Parquet folder over Spark tasks."""
    from tabsynth.run import spark

    written = spark.sample(model_dir, out, rows=rows, partitions=partitions, seed=seed, master=master,
                           overwrite=overwrite)
    click.echo(f"{written:,} rows written to {out}/")


def run(argv: list[str] | None = None) -> None:
    """The command line, with tabsynth's errors as one line each and exit code 2 (no traceback)."""
    try:
        main.main(args=argv, prog_name="tabsynth.cli.spark", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TabsynthError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    run()
