"""One function per system: `fit(train, params, context) -> Fitted`. Each imports its library lazily, since
this file is loaded by every environment and each has only its own system installed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DELTA = 1e-9  # every DP run: tabsynth, SmartNoise and MOSTLY AI (DataSynthesizer has pure ε-DP)
TARGET = "income"
MBI_SAMPLING = "mbi_sampling"  # SmartNoise MST and AIM: how their graphical model draws rows (see _MbiSampling)


@dataclass(frozen=True)
class Context:
    """What every system is given besides its parameters: a scratch folder, a seed, CPU threads, ε."""

    workdir: str
    seed: int
    threads: int
    schema: str  # tabsynth's schema (JSON): the column types every system is given
    epsilon: float | None = None


@dataclass(frozen=True)
class Fitted:
    sample: Callable[[int], pd.DataFrame]
    epsilon_spent: float | None = None


def _seed_everything(context: Context) -> None:
    """The peers draw from global generators; seeding them is the only way to make their runs repeatable."""
    random.seed(context.seed)
    np.random.seed(context.seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(context.seed)
    torch.set_num_threads(context.threads)


def tabsynth(train: pd.DataFrame, params: dict, context: Context) -> Fitted:
    from tabsynth.models.base import create_model
    from tabsynth.privacy.budget import Budget
    from tabsynth.privacy.mechanisms import RandomSource
    from tabsynth.table.schema import Schema

    params = dict(params)
    name = params.pop("model")
    model = create_model(name, **params)
    if "threads" in model.get_params() and "threads" not in params:  # the torch models: one thread per fit
        model = create_model(name, threads=context.threads, **params)
    schema = Schema.from_dict(json.loads(Path(context.schema).read_text()))
    budget = None if context.epsilon is None else Budget(context.epsilon, DELTA, RandomSource.system())
    model.fit(train, schema, budget=budget, rng=context.seed)
    spent = getattr(model, "privacy_", {}).get("epsilon")
    return Fitted(lambda n: model.sample(n, rng=context.seed + 1), spent)


def sdv(train: pd.DataFrame, params: dict, context: Context) -> Fitted:
    from sdv import single_table
    from sdv.metadata import Metadata

    _seed_everything(context)
    params = dict(params)
    synthesizer_class = getattr(single_table, params.pop("synthesizer"))
    synthesizer = synthesizer_class(Metadata.detect_from_dataframes({"adult": train}), **params)
    synthesizer.fit({"adult": train})  # SDV 2.0 takes {table name: frame}

    def sample(n: int) -> pd.DataFrame:
        synthetic = synthesizer.sample(num_rows=n)
        return synthetic["adult"] if isinstance(synthetic, dict) else synthetic

    return Fitted(sample)


def smartnoise(train: pd.DataFrame, params: dict, context: Context) -> Fitted:
    """MST, AIM or DP-CTGAN; 10% of ε goes to the bounds of numeric columns (SmartNoise's own preprocessing).

    SmartNoise reads the category lists from the data, as it always does, without spending ε on them.
    """
    from snsynth import Synthesizer

    _seed_everything(context)
    params = dict(params)
    mbi_sampling = params.pop(MBI_SAMPLING, None)
    synthesizer = Synthesizer.create(params.pop("synthesizer"), epsilon=context.epsilon, delta=DELTA, **params)
    numeric = numeric_columns(context)
    categorical = [name for name in train.columns if name not in numeric]
    preprocessor_eps = 0.1 * context.epsilon if numeric else 0.0
    synthesizer.fit(train, categorical_columns=categorical, continuous_columns=numeric,
                    preprocessor_eps=preprocessor_eps, nullable=bool(train.isna().any().any()))
    if mbi_sampling:
        synthesizer.synthesizer = _MbiSampling(synthesizer.synthesizer, mbi_sampling)
    return Fitted(lambda n: pd.DataFrame(synthesizer.sample(n), columns=train.columns),
                  _smartnoise_epsilon(synthesizer, context.epsilon))


class _MbiSampling:
    """MST's and AIM's fitted graphical model (mbi 1.1.0), drawing rows with `method` instead of the default.

    mbi 1.1.0's default "round" method gives each row its value in row order within each group of parent
    values, so columns generated from the same parents come out in step: on discretised Adult at ε = 1 its
    3-way workload error was 0.59 at every ε, against 0.25 for the same fitted model sampled with "sample"
    (i.i.d. draws from the model). Post-processing: the privacy guarantee is unchanged.
    """

    def __init__(self, model, method: str):
        self.model, self.method = model, method

    def synthetic_data(self, rows=None):
        return self.model.synthetic_data(rows, method=self.method)

    def __getattr__(self, name):
        return getattr(self.model, name)


def _smartnoise_epsilon(synthesizer, epsilon: float) -> float:
    """MST and AIM spend all of ε. DP-CTGAN logs its accountant's ε after each epoch and stops after the first
    epoch that went past its budget, so the last logged value (plus preprocessing) is what it spent."""
    trained = getattr(synthesizer, "epsilon_list", None)
    return epsilon - synthesizer.epsilon + trained[-1] if trained else epsilon


def numeric_columns(context: Context) -> list[str]:
    """Columns that tabsynth's schema calls numerical: every system is told the same column types."""
    columns = json.loads(Path(context.schema).read_text())["columns"]
    return [column["name"] for column in columns if column["kind"] == "numerical"]


def datasynthesizer(train: pd.DataFrame, params: dict, context: Context) -> Fitted:
    """PrivBayes (correlated attribute mode): a Bayesian network of degree k, ε split inside DataSynthesizer."""
    from DataSynthesizer.DataDescriber import DataDescriber
    from DataSynthesizer.DataGenerator import DataGenerator

    source = Path(context.workdir) / "train.csv"
    description = Path(context.workdir) / "description.json"
    train.to_csv(source, index=False)
    describer = DataDescriber(category_threshold=params.get("category_threshold", 20))
    numeric = numeric_columns(context)
    categorical = {name: name not in numeric for name in train.columns}
    describer.describe_dataset_in_correlated_attribute_mode(
        str(source), k=params.get("k", 2), epsilon=context.epsilon, attribute_to_is_categorical=categorical,
        seed=context.seed)
    describer.save_dataset_description_to_file(str(description))

    def sample(n: int) -> pd.DataFrame:
        generator = DataGenerator()
        generator.generate_dataset_in_correlated_attribute_mode(n, str(description), seed=context.seed + 1)
        return generator.synthetic_dataset[list(train.columns)]

    return Fitted(sample, context.epsilon)


def mostlyai(train: pd.DataFrame, params: dict, context: Context) -> Fitted:
    """TabularARGN; with ε set, its DP mode stops training once the accountant's ε would pass it."""
    from mostlyai.engine import TabularARGN
    from mostlyai.engine.domain import DifferentialPrivacyConfig

    _seed_everything(context)
    workspace = Path(context.workdir) / "workspace"
    privacy = None if context.epsilon is None else DifferentialPrivacyConfig(max_epsilon=context.epsilon, delta=DELTA)
    model = TabularARGN(workspace_dir=workspace, differential_privacy=privacy, random_state=context.seed,
                        device="cpu", **params)
    model.fit(train)
    spent = _mostlyai_epsilon(workspace) if privacy else None
    return Fitted(lambda n: model.sample(n_samples=n)[list(train.columns)], spent)


def _mostlyai_epsilon(workspace: Path) -> float | None:
    """ε of the checkpoint the engine kept: the last one logged in its progress messages."""
    for path in workspace.rglob("progress-messages.csv"):
        progress = pd.read_csv(path)
        kept = progress[progress["is_checkpoint"].astype(bool)]
        if len(kept):
            return float(kept["dp_eps"].iloc[-1])
    return None
