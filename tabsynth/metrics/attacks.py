"""Anonymeter's three attacks: singling out, linkability and attribute inference.

After Giomi et al. 2022, "A Unified Framework for Quantifying Privacy Risk in Synthetic Data". Each
attack uses only the synthetic table; it is run against training rows (the attack) and against
holdout rows the model never saw (the control). The risk is the attack's success beyond the
control's, (attack rate - control rate) / (1 - control rate), clipped to [0, 1], with a 95%
interval from Wilson intervals on both rates, propagated as in anonymeter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.metrics.distance import EncodedTables, as_numbers, encode_tables, nearest_distances, sample_rows
from tabsynth.metrics.result import MetricResult
from tabsynth.table.schema import Column, Schema

Z95 = 1.959963984540054
MAX_ROWS = 10_000
QUERY_BATCH = 1_000
MATCH_CELLS = 4_000_000  # queries x rows per block when counting matches
EQUALS, AT_LEAST, AT_MOST, IS_MISSING = 0, 1, 2, 3
COMPARISONS = {EQUALS: np.equal, AT_LEAST: np.greater_equal, AT_MOST: np.less_equal,
               IS_MISSING: lambda cells, _: np.isnan(cells)}
WEIGHT_GRID = np.logspace(-8, 0, 401)  # query weights tried when fitting the singling-out size correction


# --- shared by every risk check -----------------------------------------------------------------------


@dataclass(frozen=True)
class AttackCounts:
    """Successful attempts of the attack on training rows and of the control on holdout rows."""

    attack: float
    control: float
    attempts: int

    def summary(self) -> dict:
        attack_rate, control_rate = self.attack / self.attempts, self.control / self.attempts
        risk = 0.0 if control_rate >= 1 else (attack_rate - control_rate) / (1 - control_rate)
        return {"risk": _clip(risk), "ci95": self._risk_interval(), "attack_rate": attack_rate,
                "control_rate": control_rate, "attempts": self.attempts}

    def _risk_interval(self) -> list[float]:
        (attack, attack_error), (control, control_error) = (
            wilson(self.attack, self.attempts), wilson(self.control, self.attempts))
        center = (attack - control) / (1 - control)
        error = math.hypot(attack_error / (1 - control), control_error * (attack - 1) / (1 - control) ** 2)
        return [_clip(center - error), _clip(center + error)]


def wilson(successes: float, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score estimate of a success rate: (centre, half-width)."""
    denominator = trials + z * z
    centre = (successes + z * z / 2) / denominator
    half_width = z / denominator * math.sqrt(successes * (trials - successes) / trials + z * z / 4)
    return centre, half_width


def wilson_interval(successes: float, trials: int) -> list[float]:
    centre, half_width = wilson(successes, trials)
    return [_clip(centre - half_width), _clip(centre + half_width)]


def chance_upper(rate: float, trials: int) -> float:
    """The 95 % Wilson upper bound of a chance rate measured on `trials` real rows: the most chance can explain.
    A holdout of 40 rows that repeats no training row bounds chance at 0.088, not 0. With no rows there is no
    baseline, and chance explains nothing (0)."""
    return wilson_interval(rate * trials, trials)[1] if trials > 0 else 0.0


def finite_or_none(value) -> float | None:
    """A plain float for the manifest, or None where the number is not finite."""
    return float(value) if value is not None and np.isfinite(value) else None


def _clip(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def missing_input(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame) -> str | None:
    """Why a check comparing the three tables cannot run, or None."""
    empty = [name for name, frame in (("training", train), ("holdout", holdout), ("synthetic", synthetic))
             if len(frame) == 0]
    return f"no rows in the {' and '.join(empty)} table" if empty else None


def unavailable(name: str, description: str, reason: str, goal: str = "min") -> list[MetricResult]:
    """A NaN result (the gate fails it) that says why the check could not run."""
    return [MetricResult(name, float("nan"), goal, description, details={"reason": reason})]


def _risk_result(name: str, description: str, counts: AttackCounts, **details) -> MetricResult:
    summary = counts.summary()
    return MetricResult(name, summary.pop("risk"), "min", description, details={**summary, **details})


# --- singling out -------------------------------------------------------------------------------------

SINGLING_OUT = "singling_out_risk"
SINGLING_OUT_TEXT = "share of predicates from synthetic rows that single out one training row, beyond chance"


@dataclass(frozen=True)
class Queries:
    """Conjunctions of one predicate per chosen column: arrays of shape (queries, columns per query)."""

    columns: np.ndarray
    values: np.ndarray
    operators: np.ndarray

    def __len__(self) -> int:
        return len(self.columns)

    def take(self, rows) -> Queries:
        return Queries(self.columns[rows], self.values[rows], self.operators[rows])

    def extended(self, other: Queries) -> Queries:
        """These queries, then those of `other` not already here."""
        both = Queries(*(np.concatenate(pair) for pair in zip(self.arrays(), other.arrays(), strict=True)))
        repeated = pd.DataFrame(np.hstack(both.arrays())).duplicated().to_numpy()
        return both.take(~repeated)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.columns, self.values, self.operators


def singling_out_risk(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
                      rng: np.random.Generator, n_attacks: int = 500, n_cols: int = 3, max_rows: int = MAX_ROWS,
                      max_attempts: int = 30_000) -> list[MetricResult]:
    """Multivariate singling out: predicates that isolate one synthetic row, tried on training and holdout rows.

    As in anonymeter, every table is deduplicated first and predicates join n_cols columns. Where the two
    real samples differ in size, the control's successes are rescaled to the training size with
    anonymeter's model of singling-out success against table size.
    """
    columns = schema.modelled()
    problem = missing_input(train, holdout, synthetic) or (None if columns else "no modelled columns")
    if problem:
        return unavailable(SINGLING_OUT, SINGLING_OUT_TEXT, problem)
    rng = np.random.default_rng(rng)
    synthetic_rows = sample_rows(synthetic, max_rows, rng)
    synthetic_table, train_table, holdout_table = (
        _query_table(frame, columns, synthetic_rows)
        for frame in (synthetic_rows, sample_rows(train, max_rows, rng), sample_rows(holdout, max_rows, rng)))
    numeric = np.array([c.kind in ("numerical", "datetime") for c in columns])
    queries = _singling_out_queries(synthetic_table, numeric, n_attacks, min(n_cols, len(columns)), rng, max_attempts)
    if not len(queries):
        return unavailable(SINGLING_OUT, SINGLING_OUT_TEXT, "no predicate singles out a synthetic row")
    control = float(np.sum(count_matches(holdout_table, queries) == 1))
    control *= _size_correction(holdout_table, queries, len(train_table), rng) if control else 1.0
    counts = AttackCounts(float(np.sum(count_matches(train_table, queries) == 1)), min(control, len(queries)),
                          len(queries))
    return [_risk_result(SINGLING_OUT, SINGLING_OUT_TEXT, counts, queries_requested=n_attacks,
                         synthetic_rows=len(synthetic_table), train_rows=len(train_table),
                         holdout_rows=len(holdout_table))]


def _query_table(frame: pd.DataFrame, columns: list[Column], synthetic: pd.DataFrame) -> np.ndarray:
    """Distinct rows as floats: numbers and dates as such, categories as codes of the synthetic values."""
    encoded = {}
    for column in columns:
        values = frame[column.name]
        if column.kind in ("numerical", "datetime"):
            encoded[column.name] = as_numbers(values)
        else:
            known = pd.Index(pd.unique(synthetic[column.name].dropna().astype(object)), dtype=object)
            codes = known.get_indexer(values.astype(object)).astype(float)
            codes[values.isna().to_numpy()] = np.nan
            encoded[column.name] = codes
    return pd.DataFrame(encoded).drop_duplicates().to_numpy(float)


def _singling_out_queries(table: np.ndarray, numeric: np.ndarray, wanted: int, n_cols: int,
                          rng: np.random.Generator, max_attempts: int) -> Queries:
    """Distinct predicates built from random synthetic rows that match exactly one synthetic row."""
    with np.errstate(all="ignore"):
        medians = np.array([np.median(c[~np.isnan(c)]) if (~np.isnan(c)).any() else 0.0 for c in table.T])
    found = Queries(np.zeros((0, n_cols), int), np.zeros((0, n_cols)), np.zeros((0, n_cols), int))
    for _ in range(0, max_attempts, QUERY_BATCH):
        batch = _queries_from_rows(table, numeric, medians, n_cols, rng)
        found = found.extended(batch.take(count_matches(table, batch) == 1))
        if len(found) >= wanted:
            break
    return found.take(slice(0, wanted))


def _queries_from_rows(table: np.ndarray, numeric: np.ndarray, medians: np.ndarray, n_cols: int,
                       rng: np.random.Generator) -> Queries:
    """Each query takes a random row's values on random columns: '== value' for categories, 'is missing'
    where the value is missing, and for numbers '>= value' above the median, '<= value' otherwise."""
    rows = rng.integers(0, len(table), QUERY_BATCH)
    columns = np.sort(rng.random((QUERY_BATCH, table.shape[1])).argsort(axis=1)[:, :n_cols], axis=1)
    values = table[rows[:, None], columns]
    operators = np.where(numeric[columns], np.where(values > medians[columns], AT_LEAST, AT_MOST), EQUALS)
    return Queries(columns, values, np.where(np.isnan(values), IS_MISSING, operators))


def count_matches(table: np.ndarray, queries: Queries) -> np.ndarray:
    """How many rows of `table` satisfy each query."""
    step = max(1, MATCH_CELLS // max(len(table), 1))
    counts = [_count_block(table, queries.take(slice(start, start + step))) for start in range(0, len(queries), step)]
    return np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)


def _count_block(table: np.ndarray, queries: Queries) -> np.ndarray:
    # One broadcast comparison per (column, operator) group, so no (queries x rows) gather of the table.
    match = np.ones((len(queries), len(table)), dtype=bool)
    with np.errstate(invalid="ignore"):
        for column in np.unique(queries.columns):
            for operator, compare in COMPARISONS.items():
                chosen, slot = np.nonzero((queries.columns == column) & (queries.operators == operator))
                if len(chosen):
                    match[chosen] &= compare(table[:, column], queries.values[chosen, slot][:, None])
    return match.sum(axis=1, dtype=np.int32)


def _singling_out_share(size, weight):
    """Integral over query weights w in [0, weight] of n w (1 - w)^(n - 1), the chance that a query matching
    a share w of the population isolates one of n rows (Cohen & Nissim 2020; anonymeter's model)."""
    return (1 - (size * weight + 1) * (1 - weight) ** size) / (size + 1)


def _size_correction(holdout: np.ndarray, queries: Queries, train_size: int, rng: np.random.Generator) -> float:
    """Ratio of expected control successes at the training size to those at the holdout size.

    Successes on holdout subsamples are fitted with norm * _singling_out_share(n, weight) by least
    squares: over a grid of weights, with the norm solved in closed form (no local optima to fall into).
    """
    if train_size == len(holdout):
        return 1.0
    sizes = np.repeat(np.linspace(min(1000, len(holdout) // 2), len(holdout), 10).astype(int), 5)
    successes = np.array([np.sum(count_matches(holdout[rng.choice(len(holdout), size, replace=False)], queries) == 1)
                          for size in sizes], dtype=float)
    shapes = _singling_out_share(sizes[None, :], WEIGHT_GRID[:, None])
    norms = shapes @ successes / (shapes**2).sum(axis=1)
    weight = WEIGHT_GRID[np.argmin(((norms[:, None] * shapes - successes) ** 2).sum(axis=1))]
    return float(_singling_out_share(train_size, weight) / _singling_out_share(len(holdout), weight))


# --- linkability --------------------------------------------------------------------------------------

LINKABILITY = "linkability_risk"
LINKABILITY_TEXT = "share of real rows whose two column halves the synthetic rows link together, beyond chance"


def linkability_risk(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
                     rng: np.random.Generator, n_attacks: int = 500, n_neighbors: int = 1,
                     max_rows: int = MAX_ROWS, encoded: EncodedTables | None = None) -> list[MetricResult]:
    """The attacker holds two tables, the first and second half of the columns (in schema order), and
    links a row's halves when their n_neighbors closest synthetic rows overlap."""
    columns = schema.modelled()
    problem = missing_input(train, holdout, synthetic) or (None if len(columns) >= 2 else "fewer than 2 columns")
    if problem:
        return unavailable(LINKABILITY, LINKABILITY_TEXT, problem)
    rng = np.random.default_rng(rng)
    encoded = encoded or encode_tables(train, holdout, synthetic, columns)
    encoder = encoded.encoder
    halves = [encoder.features(encoder.names[:len(columns) // 2]), encoder.features(encoder.names[len(columns) // 2:])]
    synthetic_features = encoded.synthetic.sample(max_rows, rng).features
    attempts = min(n_attacks, len(train), len(holdout))
    targets = encoded.train.sample(attempts, rng).followed_by(encoded.holdout.sample(attempts, rng))
    linked = _linked(targets.features, synthetic_features, halves, n_neighbors, encoder.discrete())
    counts = AttackCounts(float(linked[:attempts].sum()), float(linked[attempts:].sum()), attempts)
    return [_risk_result(LINKABILITY, LINKABILITY_TEXT, counts, n_neighbors=n_neighbors,
                         synthetic_rows=len(synthetic_features), halves=[encoder.names[:len(columns) // 2],
                                                                         encoder.names[len(columns) // 2:]])]


def _linked(targets: np.ndarray, synthetic: np.ndarray, halves: list[np.ndarray], n_neighbors: int,
            discrete: np.ndarray) -> np.ndarray:
    first, second = (nearest_distances(targets[:, half], synthetic[:, half], k=n_neighbors, discrete=discrete[half])[1]
                     for half in halves)
    shared = (first[:, :, None] == second[:, None, :]) & (first[:, :, None] >= 0)
    return shared.any(axis=(1, 2))


# --- attribute inference ------------------------------------------------------------------------------

MIN_CONTROL_MISSES = 10  # below this the relative risk (attack - control) / (1 - control) is too unstable
INFERENCE = "attribute_inference_risk"
INFERENCE_TEXT = "success guessing a secret column from the closest synthetic row on the others, beyond chance " \
                 "(worst secret column)"


def attribute_inference_risk(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
                             *, rng: np.random.Generator, n_attacks: int = 500, max_secrets: int = 10,
                             tolerance: float = 0.05, max_rows: int = MAX_ROWS,
                             encoded: EncodedTables | None = None) -> list[MetricResult]:
    """For up to max_secrets secret columns, the attacker knows every other column of a target and guesses
    the secret from the closest synthetic row; continuous guesses within `tolerance` count as right
    (of the true value for numbers, of the training range for dates). The value is the worst secret's risk."""
    columns = schema.modelled()
    problem = missing_input(train, holdout, synthetic) or (None if len(columns) >= 2 else "fewer than 2 columns")
    if problem:
        return unavailable(INFERENCE, INFERENCE_TEXT, problem)
    rng = np.random.default_rng(rng)
    secrets = [columns[i] for i in np.sort(rng.permutation(len(columns))[:max_secrets])]
    encoded = encoded or encode_tables(train, holdout, synthetic, columns)
    encoder, sampled = encoded.encoder, encoded.synthetic.sample(max_rows, rng)
    discrete = encoder.discrete()
    attempts = min(n_attacks, len(train), len(holdout))
    real = encoded.train.sample(attempts, rng).followed_by(encoded.holdout.sample(attempts, rng))
    synthetic_rows, targets = sampled.rows, real.rows
    synthetic_features, target_features = sampled.features, real.features
    per_secret = {}
    for secret in secrets:
        known = encoder.features([c.name for c in columns if c.name != secret.name])
        closest = nearest_distances(target_features[:, known], synthetic_features[:, known], k=1,
                                    discrete=discrete[known])[1][:, 0]
        guesses = synthetic_rows[secret.name].iloc[closest].reset_index(drop=True)
        spread = getattr(encoder.scales[encoder.names.index(secret.name)], "spread", 1.0)
        right = guessed_right(secret, guesses, targets[secret.name], tolerance, spread)
        counts = AttackCounts(float(right[:attempts].sum()), float(right[attempts:].sum()), attempts)
        per_secret[secret.name] = _inference_summary(counts)
    worst = max(per_secret, key=lambda name: per_secret[name]["risk"])
    return [MetricResult(INFERENCE, per_secret[worst]["risk"], "min", INFERENCE_TEXT,
                         details={"worst_secret": worst, "ci95": per_secret[worst]["ci95"], "per_secret": per_secret,
                                  "attempts": attempts, "synthetic_rows": len(synthetic_rows)})]


def _inference_summary(counts: AttackCounts) -> dict:
    """The risk of one secret column. Where the control (rows the model never saw) already guesses the secret
    nearly always, the relative risk divides by a handful of misses and swings between 0 and 1 on one row;
    the synthetic data can then add at most the few misses left, so the absolute excess is the risk."""
    summary = counts.summary()
    if counts.attempts - counts.control < MIN_CONTROL_MISSES:
        excess = _clip((counts.attack - counts.control) / counts.attempts)
        summary.update(risk=excess, ci95=[0.0, _clip(excess + (counts.attempts - counts.control) / counts.attempts)],
                       note=f"the control misses fewer than {MIN_CONTROL_MISSES} guesses: absolute excess reported")
    return summary


def guessed_right(secret: Column, guesses: pd.Series, truths: pd.Series, tolerance: float, spread: float
                  ) -> np.ndarray:
    """Exact matches, both missing, or for continuous secrets a guess within the tolerance (anonymeter's rule)."""
    both_missing = guesses.isna().to_numpy() & truths.isna().to_numpy()
    if secret.kind == "datetime" or secret.kind == "numerical" and not secret.discrete:
        guessed, true = as_numbers(guesses), as_numbers(truths)
        allowed = tolerance * (spread if secret.kind == "datetime" else np.abs(true))
        with np.errstate(invalid="ignore"):
            return both_missing | (np.abs(guessed - true) <= allowed)
    codes, _ = pd.factorize(pd.concat([guesses, truths], ignore_index=True).astype(object))
    return both_missing | ((codes[:len(guesses)] == codes[len(guesses):]) & (codes[:len(guesses)] >= 0))
