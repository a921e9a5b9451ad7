"""The table's metrics, all from tabsynth's own `validate` package, so that anyone can reproduce them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabsynth.metrics.fidelity import column_distances
from tabsynth.metrics.risk import dcr_share, exact_copies, mia_auc
from tabsynth.metrics.utility import ml_utility
from tabsynth.table.infer import conform
from tabsynth.table.schema import Schema

TARGET = "income"
COLUMNS = ("1-way TVD", "2-way TVD", "TSTR AUC", "TRTR AUC", "exact copies", "DCR share", "MIA AUC")


def aligned(synthetic: pd.DataFrame, train: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The synthetic table with the training table's columns and order; whole numbers that a peer returns as
    floats (28.0) become integers again where the training column is one, so exact copies are found."""
    missing = [name for name in train.columns if name not in synthetic.columns]
    if missing:
        raise ValueError(f"synthetic table lacks column(s) {', '.join(missing)}")
    synthetic = synthetic[list(train.columns)].copy()
    for name in train.columns:
        values = synthetic[name]
        if pd.api.types.is_integer_dtype(train[name]) and pd.api.types.is_float_dtype(values):
            whole = values.dropna()
            if len(whole) == len(values) and np.all(np.isfinite(whole)) and np.all(whole == np.round(whole)):
                synthetic[name] = values.astype(train[name].dtype)
    return conform(synthetic, schema)


def score(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
          seed: int = 0) -> dict[str, float]:
    """Mean 1- and 2-way TVD, TSTR and TRTR AUC on `income`, exact-copy rate, DCR share, MIA AUC."""
    synthetic = aligned(synthetic, train, schema)
    values = {}
    for metric in (column_distances(train, synthetic, schema),
                   ml_utility(train, holdout, synthetic, schema, TARGET, random_state=seed),
                   exact_copies(train, holdout, synthetic, schema),
                   dcr_share(train, holdout, synthetic, schema, rng=np.random.default_rng(seed)),
                   mia_auc(train, holdout, synthetic, schema, rng=np.random.default_rng(seed))):
        values |= {result.name: result.value for result in metric}
    return {"1-way TVD": values["mean_column_tvd"], "2-way TVD": values["mean_pair_tvd"],
            "TSTR AUC": values["tstr_auc"], "TRTR AUC": values["trtr_auc"],
            "exact copies": values["exact_copy_rate"], "DCR share": values["dcr_share"],
            "MIA AUC": values["mia_auc"]}
