"""The train/holdout split every workflow shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabsynth.errors import InputError


def split(table: pd.DataFrame, holdout_share: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each row goes to the holdout with probability `holdout_share`, independently of every other row (as the
    DuckDB engine's hash split does). Adding or removing one row thus adds or removes at most that row from the
    training set, the add/remove neighbouring relation every DP model's accounting assumes; a fixed holdout size
    would turn some additions into a replacement of one training row. The holdout never trains and is the chance
    baseline for the risk checks."""
    in_holdout = rng.random(len(table)) < holdout_share
    if len(table) and in_holdout.all():
        raise InputError(f"the random split put all {len(table)} rows in the holdout, leaving none to fit; "
                         f"lower the policy's holdout_share ({holdout_share:g})")
    return table[~in_holdout].reset_index(drop=True), table[in_holdout].reset_index(drop=True)
