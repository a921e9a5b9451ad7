"""What each workflow is asked to do: the options of release, fit, sample and validate, and what a release returns.

`data` may be a file path, a database URL (read with `table` or `query`) or a pandas DataFrame (the Python API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tabsynth.publish.gate import Verdict
from tabsynth.run.auto import AUTO

Progress = Callable[[str, float], None]  # (what is happening, share of the whole job done)


@dataclass
class ReleaseOptions:
    data: object  # a file path, a database URL read with `table` or `query`, or a DataFrame
    out: Path
    model: str = AUTO  # or a registered name; auto picks by the policy and the table (run/auto.py)
    rows: int | None = None
    schema: Path | None = None
    seed: int | None = None
    policy: str = "default"
    fmt: str = "parquet"
    overwrite: bool = False
    model_params: dict = field(default_factory=dict)
    epsilon: float | None = None
    delta: float | None = None
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    constraints: Path | None = None
    source_id: str | None = None
    ledger: str | None = None
    table: str | None = None
    query: str | None = None
    out_table: str | None = None  # also write the synthetic rows to this table ([schema.]name)
    out_url: str | None = None  # the database for out_table [default: the source's]
    replace: bool = False  # let out_table replace an existing table
    engine: str = "memory"  # or "duckdb": dp-marginal through DuckDB, for tables larger than memory
    model_choice: dict | None = None  # who chose the model and why (`plan.with_choice`); for the manifest


@dataclass
class ReleaseResult:
    out: Path
    verdict: Verdict
    manifest: dict
    synthetic: pd.DataFrame | None  # None for an out-of-core release (its rows are only in the file) or a dataset
    tables: dict[str, pd.DataFrame] | None = None  # a dataset's synthetic tables, by name


@dataclass
class DatasetOptions:
    """A release of linked tables: `relations` (from a dataset YAML) and, from the Python API, the `frames`."""

    relations: object  # tabsynth.table.dataset.Relations
    out: Path
    frames: dict | None = None  # {table name: DataFrame}; None: read each table from its path
    schemas: dict | None = None  # {table name: Schema} declared by the steward
    model: str = "auto"  # argn, or dp-argn when DP is asked for
    rows: int | None = None  # persons to synthesize [default: the training persons]
    seed: int | None = None
    policy: str = "default"
    fmt: str = "parquet"
    overwrite: bool = False
    model_params: dict = field(default_factory=dict)
    epsilon: float | None = None
    delta: float | None = None
    target: str | None = None  # TABLE.COLUMN, or a column of the person table
    out_table: str | None = None  # also write every table to a database: PREFIX, or SCHEMA. on PostgreSQL
    out_url: str | None = None
    replace: bool = False
    flat: object | None = None  # run.by_person.FlatLayout: a flat input split by person, released joined back
    model_choice: dict | None = None
    source_id: str | None = None  # a DP release's name of the dataset in the privacy ledger
    ledger: str | None = None


@dataclass
class FitOptions:
    data: object  # a file path, a database URL read with `table` or `query`, or a DataFrame
    out: Path | None  # the model folder; None: keep the model in memory (the Python API)
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
    target: str | None = None  # a label column for models with a `target` parameter [default: the policy's]
    table: str | None = None
    query: str | None = None
    engine: str = "memory"
    model_choice: dict | None = None


@dataclass
class SampleOptions:
    model_dir: Path
    out: Path
    rows: int | None = None
    where: str | None = None
    rebalance: str | None = None
    seed: int | None = None
    overwrite: bool = False


@dataclass
class ValidateOptions:
    real: object  # a file path or a DataFrame; so are synthetic and holdout
    synthetic: object
    policy: str = "default"
    holdout: object | None = None
    schema: Path | None = None
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    constraints: Path | None = None
    report: Path | None = None
