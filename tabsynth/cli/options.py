"""The options and parsers that several commands share, in one place (the command modules import only this and
`app`, never each other). Each option is a click decorator; applying it adds a fresh option to a command."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from tabsynth.errors import InputError

PATH = click.Path(path_type=Path)
DATASET_HELP = ("Linked tables: several DATA files, a folder of table files or Parquet folders, a dataset YAML, or a "
                "database URL without --table (its catalogue's keys, from --db-schema or the default schema).")
DATA_HELP = ("DATA is a CSV or Parquet file, a folder of Parquet files, or a database URL "
             "(sqlite:///file.db, postgresql://user@host:5432/db) read with --table or --query.")

model_params_option = click.option("--param", "params", multiple=True,
                                   help="Model parameter NAME=VALUE (repeatable), e.g. epochs=100.")
epsilon_option = click.option("--epsilon", type=float,
                              help="DP models: epsilon to spend [default: the policy's cap, else 1].")
delta_option = click.option("--delta", type=float, help="DP models: delta to spend [default: 1e-9].")
source_id_option = click.option(
    "--source-id", help="Name this source in the privacy ledger [default: the file's SHA-256; for a database table, "
    "its URL without password and its name; needed for a DP fit on --query].")
ledger_option = click.option("--ledger",
                             help="Ledger database URL [default: $TABSYNTH_LEDGER or ~/.tabsynth/ledger.db].")


def parse_params(pairs: tuple[str, ...]) -> dict:
    """`--param epochs=50 --param batch_size=500` → {"epochs": 50, "batch_size": 500} (YAML scalars)."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {pair!r}: expected NAME=VALUE, e.g. --param epochs=50")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise InputError(f"--param {pair!r}: cannot read the value {value!r}") from None
    return params


def _apply(command, decorators):
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def source_options(command):
    """--table and --query: what to read when DATA is a database URL (shared by inspect, release and fit)."""
    return _apply(command, (
        click.option("--table", help="Table (or view) to read when DATA is a database URL: NAME or SCHEMA.NAME."),
        click.option("--query", help="SELECT to read when DATA is a database URL, e.g. "
                                     "\"SELECT * FROM visits WHERE year >= 2020\" (run read-only)."),
    ))


def check_options(command):
    """Options shared by `release` and `validate`: the policy and what its checks need."""
    return _apply(command, (
        click.option("--policy", default="default", show_default=True,
                     help="Policy name in policies/ (default, internal-analytics, fraud-model-training, "
                          "strict-external-sharing) or a path to a policy YAML."),
        click.option("--target", help="Label column for train-synthetic-test-real (overrides the policy's)."),
        click.option("--sensitive", multiple=True, help="Column whose subgroups are checked for bias (repeatable)."),
        click.option("--constraints", "constraints", type=PATH,
                     help="YAML of user constraints (e.g. `admitted <= discharged`) the synthetic rows must meet."),
        click.option("--schema", "schema_path", type=PATH, help="Edited schema.yaml to use."),
    ))


def dataset_options(command):
    """What `inspect` reads and writes for linked tables."""
    return _apply(command, (
        click.option("--dataset-out", type=PATH,
                     help="Where to write the dataset YAML (tables, keys, order columns) that `tabsynth inspect "
                          "DATASET.yaml` reads back [default: dataset.yaml in the current folder; a dataset YAML "
                          "given as DATA is only checked, not rewritten]. An existing file is kept unless "
                          "--overwrite."),
        click.option("--split-by", metavar="KEY",
                     help="One table with several rows per KEY (a person): write a person table (KEY and every column "
                          "constant within it) and an events table (the rest, KEY as foreign key, an event_id, "
                          "ordered) as STEM_persons and STEM_events (CSV for a CSV source, else Parquet) beside the "
                          "dataset YAML, instead of schema.yaml."),
        click.option("--db-schema", help="Database schema whose tables form the dataset, when DATA is a database URL "
                                         "without --table [default: the database's default schema]."),
    ))
