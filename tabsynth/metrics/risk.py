"""Privacy-risk checks against the training rows, with the holdout as the chance baseline.

Every check is a pure function `f(train, holdout, synthetic, schema, *, rng, ...) -> list[MetricResult]`
over tables conformed to the schema; `privacy_risks` runs them all. Distances use the mixed-type
encoding of `tabsynth.metrics.distance`, learnt from the training rows; `privacy_risks` encodes the three
tables once (`encoded`) and each check samples its rows from them, as it would from the tables themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabsynth.metrics.attacks import (
    MAX_ROWS,
    Z95,
    attribute_inference_risk,
    chance_upper,
    finite_or_none,
    linkability_risk,
    missing_input,
    singling_out_risk,
    unavailable,
    wilson_interval,
)
from tabsynth.metrics.distance import EncodedTables, encode_tables, nearest_distances, row_keys
from tabsynth.metrics.result import MetricResult
from tabsynth.metrics.statistics import average_ranks
from tabsynth.table.schema import Schema

DCR_SHARE_TEXT = ("share of synthetic rows closer to a training row than to any holdout row, corrected to equal "
                  "sizes: 0.5 is chance (never saw the training rows), 1.0 is all copies")
NNDR_TEXT = "5th percentile of synthetic rows' closest / second-closest training-row distance ratio"
MIA_TEXT = "ROC AUC of telling training rows from holdout rows by their distance to the synthetic rows (0.5 is chance)"


def copy_rate(train: pd.DataFrame, other: pd.DataFrame, columns: list[str]) -> float:
    """Share of `other`'s rows that are identical to some training row on `columns`."""
    return key_copy_rate(row_keys(train, columns), row_keys(other, columns))


def key_copy_rate(train_keys: pd.Series, other_keys: pd.Series) -> float:
    """Share of the other rows whose key is a training row's key."""
    if len(other_keys) == 0:
        return float("nan")
    return float(other_keys.isin(set(train_keys)).mean())


def exact_copies(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
                 encoded: EncodedTables | None = None) -> list[MetricResult]:
    """Synthetic rows copied from training rows, beside the rate at which real holdout rows repeat them."""
    columns = [c.name for c in schema.modelled()]
    encoded = encoded or encode_tables(train, holdout, synthetic, schema.modelled())
    synthetic_rate = key_copy_rate(encoded.train.keys, encoded.synthetic.keys)
    holdout_rate = key_copy_rate(encoded.train.keys, encoded.holdout.keys) if len(holdout) else 0.0
    chance = chance_upper(holdout_rate, len(holdout))
    excess = max(0.0, synthetic_rate - chance) if np.isfinite(synthetic_rate) else float("nan")
    compared = {"columns_compared": len(columns)}
    return [
        MetricResult("exact_copy_rate", synthetic_rate, "min",
                     "share of synthetic rows identical to a training row", details=compared),
        MetricResult("holdout_copy_rate", holdout_rate, "min",
                     "share of real holdout rows identical to a training row (the rate expected by chance)"),
        MetricResult("exact_copy_excess", excess, "min",
                     "exact-copy rate beyond the most that chance explains: the holdout's copy rate, up to its "
                     "95% upper bound (a small holdout bounds chance loosely)",
                     details={"chance_upper_bound": chance, "holdout_rows": len(holdout)}),
    ]


def dcr_share(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
              rng: np.random.Generator, max_rows: int = MAX_ROWS, encoded: EncodedTables | None = None
              ) -> list[MetricResult]:
    """Distance to closest record: are synthetic rows nearer the training rows than the holdout rows?

    Each synthetic row is closer to the training rows or to the holdout rows. An exact copy is found by
    comparing rows with every training and holdout row, so no copy goes unseen; the other rows are compared
    by distance with a sample of each side, both sides sampled at the same rate. A row equally close to both
    sides counts for each in proportion to its matches there (an exact copy of a training row that no
    holdout row repeats counts fully as closer to training). By chance, a share train / (train + holdout)
    of the rows is closer to training; the value reported is 0.5 plus half the share of synthetic rows
    drawn to the training rows beyond that chance: 0.5 for a generator that never saw the training rows,
    0.6 when 20% of its rows sit by training rows, 1.0 for copies.
    """
    problem = missing_input(train, holdout, synthetic)
    if problem:
        return unavailable("dcr_share", DCR_SHARE_TEXT, problem, goal="target")
    rng = np.random.default_rng(rng)
    encoded = encoded or encode_tables(train, holdout, synthetic, schema.modelled())
    queries = encoded.synthetic.sample(max_rows, rng)
    exact = _exact_match_share(encoded, queries.keys)
    rate = min(1.0, max_rows / max(len(train), len(holdout)))  # one rate for both keeps the chance level
    references = [table.sample(max(1, round(rate * len(table))), rng) for table in (encoded.train, encoded.holdout)]
    far = np.isnan(exact)
    discrete = encoded.encoder.discrete()
    to_train, to_holdout = (nearest_distances(queries.features[far], table.features, k=1, discrete=discrete)[0][:, 0]
                            for table in references)
    ties = np.isclose(to_train, to_holdout, rtol=0, atol=1e-9)
    chance = len(train) / (len(train) + len(holdout))
    closer = exact.copy()
    closer[far] = np.where(ties, chance, (to_train < to_holdout).astype(float))
    raw = float(closer.mean())
    details = {"raw_share": raw, "chance_raw_share": chance,
               "ci95": [_on_chance_scale(bound, chance) for bound in wilson_interval(closer.sum(), len(closer))],
               "exact_training_copy_share": float(np.mean(exact == 1.0)), "tie_share": float(ties.sum() / len(closer)),
               "synthetic_rows": len(closer), "train_rows": len(train), "holdout_rows": len(holdout),
               "distance_reference_rows": [len(frame) for frame in references],
               **_percentiles("dcr_train", to_train), **_percentiles("dcr_holdout", to_holdout)}
    return [MetricResult("dcr_share", _on_chance_scale(raw, chance), "target", DCR_SHARE_TEXT, details=details)]


def _exact_match_share(encoded: EncodedTables, keys: pd.Series) -> np.ndarray:
    """Per query row (by key), the share of the real rows identical to it that are training rows (1.0 for a copy
    of a training row that no holdout row repeats); NaN where no real row is identical."""
    in_train, in_holdout = (keys.map(table.keys.value_counts()).fillna(0).to_numpy(float)
                            for table in (encoded.train, encoded.holdout))
    total = in_train + in_holdout
    return np.divide(in_train, total, out=np.full(len(total), np.nan), where=total > 0)


def _on_chance_scale(raw: float, chance: float) -> float:
    """The raw share on a scale where chance is 0.5 and all copies 1.0: above chance, 0.5 plus half the share
    of rows drawn to training beyond chance, (raw - chance) / (1 - chance); below it, 0.5 * raw / chance."""
    if raw >= chance:
        return float(0.5 + 0.5 * (raw - chance) / (1 - chance)) if chance < 1 else 0.5
    return float(0.5 * raw / chance)


def nndr_p5(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
            rng: np.random.Generator, max_rows: int = MAX_ROWS, encoded: EncodedTables | None = None
            ) -> list[MetricResult]:
    """Low ratios mark synthetic rows lying much closer to one training row than to any other."""
    if len(train) < 2 or len(synthetic) == 0:
        return unavailable("nndr_p5", NNDR_TEXT, "needs 2 training rows and 1 synthetic row", goal="max")
    rng = np.random.default_rng(rng)
    encoded = encoded or encode_tables(train, holdout, synthetic, schema.modelled())
    reference = encoded.train.sample(max_rows, rng).features
    queries = [table.sample(max_rows, rng) for table in (encoded.synthetic, encoded.holdout)]
    distances = nearest_distances(queries[0].followed_by(queries[1]).features, reference, k=2,
                                  discrete=encoded.encoder.discrete())[0]
    with np.errstate(invalid="ignore", divide="ignore"):  # both neighbours at 0: a copy of a repeated row
        ratios = np.where(distances[:, 1] > 0, distances[:, 0] / distances[:, 1], 1.0)
    synthetic_ratios, holdout_ratios = ratios[:len(queries[0])], ratios[len(queries[0]):]
    details = {"holdout_nndr_p5": finite_or_none(np.percentile(holdout_ratios, 5) if len(holdout_ratios) else None),
               "synthetic_rows": len(synthetic_ratios), "holdout_rows": len(holdout_ratios),
               "train_rows": len(reference)}
    return [MetricResult("nndr_p5", float(np.percentile(synthetic_ratios, 5)), "max", NNDR_TEXT, details=details)]


def mia_auc(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
            rng: np.random.Generator, max_rows: int = MAX_ROWS, encoded: EncodedTables | None = None
            ) -> list[MetricResult]:
    """Membership inference: an attacker scores real rows by closeness to the synthetic rows; the AUC
    of telling equal-size samples of training and holdout rows apart, with a Hanley-McNeil 95% interval."""
    problem = missing_input(train, holdout, synthetic)
    if problem:
        return unavailable("mia_auc", MIA_TEXT, problem)
    rng = np.random.default_rng(rng)
    encoded = encoded or encode_tables(train, holdout, synthetic, schema.modelled())
    reference = encoded.synthetic.sample(max_rows, rng).features
    size = min(len(train), len(holdout), max_rows)
    real = encoded.train.sample(size, rng).followed_by(encoded.holdout.sample(size, rng))
    closeness = -nearest_distances(real.features, reference, k=1, discrete=encoded.encoder.discrete())[0][:, 0]
    auc = roc_auc(closeness[:size], closeness[size:])
    details = {"ci95": hanley_mcneil_interval(auc, size, size), "train_rows": size, "holdout_rows": size,
               "synthetic_rows": len(reference)}
    return [MetricResult("mia_auc", auc, "min", MIA_TEXT, details=details)]


def roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Probability that a positive outscores a negative, ties counting half (Mann-Whitney U / n1 n2)."""
    ranks = average_ranks(np.concatenate([positive_scores, negative_scores]))
    n_pos, n_neg = len(positive_scores), len(negative_scores)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hanley_mcneil_interval(auc: float, n_pos: int, n_neg: int, z: float = Z95) -> list[float]:
    """95% interval of an AUC from its Hanley-McNeil (1982) standard error."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    half_width = z * np.sqrt(max(variance, 0.0))
    return [float(max(auc - half_width, 0.0)), float(min(auc + half_width, 1.0))]


def _percentiles(prefix: str, distances: np.ndarray) -> dict:
    return {f"{prefix}_p{q}": finite_or_none(np.percentile(distances, q) if len(distances) else None) for q in (5, 50)}


CHECKS = (dcr_share, nndr_p5, mia_auc, singling_out_risk, linkability_risk, attribute_inference_risk)
SHARE_ENCODINGS = (dcr_share, nndr_p5, mia_auc, linkability_risk, attribute_inference_risk)


def privacy_risks(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
                  rng: np.random.Generator, max_rows: int = MAX_ROWS) -> list[MetricResult]:
    """Every privacy-risk check, each on at most max_rows rows per table and with its own child generator;
    the tables are encoded once, for all of them."""
    encoded = encode_tables(train, holdout, synthetic, schema.modelled())
    results = exact_copies(train, holdout, synthetic, schema, encoded=encoded)
    for check, child in zip(CHECKS, np.random.default_rng(rng).spawn(len(CHECKS)), strict=True):
        shared = {"encoded": encoded} if check in SHARE_ENCODINGS else {}
        results += check(train, holdout, synthetic, schema, rng=child, max_rows=max_rows, **shared)
    return results
