"""Sequences: the rows of a child table with an order column, read per parent in order (visits of a patient,
payments of a card). How long sequences are, how much time passes between events, how one event follows the
previous one, and what the first events look like."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from tabsynth.metrics.linked_common import (
    Links,
    Sequences,
    count_codes,
    data_columns,
    per_table,
    sequences,
    tvd_or_disjoint,
)
from tabsynth.metrics.linked_tables import children_counts
from tabsynth.metrics.result import MetricResult
from tabsynth.table.dataset import Relations
from tabsynth.table.distances import OTHER, bin_codes, mean_or_zero
from tabsynth.table.schema import Column

FIRST_POSITIONS = 3  # position_marginals_tvd compares the 1st, 2nd and 3rd events

Frames = Mapping[str, pd.DataFrame]


def ordered_tables(relations: Relations) -> list[str]:
    """Child tables with an order column: the sequences."""
    return [n for n in relations.parents_first() if relations.tables[n].foreign_keys and relations.tables[n].order_by]


def sequence_metrics(real: Frames, synthetic: Frames, relations: Relations, schemas, real_links: Links,
                     synthetic_links: Links) -> list[MetricResult]:
    """The four sequence checks, each per ordered child table and as the worst table."""
    values: dict[str, dict] = {name: {} for name in DESCRIPTIONS}
    details: dict[str, dict] = {name: {} for name in DESCRIPTIONS}
    for table in ordered_tables(relations):
        spec, columns = relations.tables[table], data_columns(relations, schemas, table)
        counts = [children_counts(lk, frames, relations, table)
                  for lk, frames in ((real_links, real), (synthetic_links, synthetic))]
        values["sequence_length_tvd"][table] = tvd_or_disjoint(*(count_codes(c[c > 0]) for c in counts))
        details["sequence_length_tvd"][table] = {"sequences": {"real": int((counts[0] > 0).sum()),
                                                               "synthetic": int((counts[1] > 0).sum())}}
        real_seq, synthetic_seq = (sequences(frames[table], spec, lk.parents[table])
                                   for frames, lk in ((real, real_links), (synthetic, synthetic_links)))
        values["time_between_events"][table], details["time_between_events"][table] = _gap_distance(
            real_seq, synthetic_seq)
        codes = {c.name: _sorted_codes(c, real[table], synthetic[table], real_seq, synthetic_seq) for c in columns}
        pairs = {name: _consecutive_tvd(r, s, real_seq, synthetic_seq) for name, (r, s) in codes.items()}
        values["consecutive_pairs_tvd"][table] = mean_or_zero(pairs.values())
        details["consecutive_pairs_tvd"][table] = {"per_column": pairs}
        positions = _position_tvds(codes, real_seq, synthetic_seq)
        values["position_marginals_tvd"][table] = mean_or_zero(v for per in positions.values() for v in per.values())
        details["position_marginals_tvd"][table] = {"per_position": positions}
    return [result for name, text in DESCRIPTIONS.items()
            for result in per_table(name, values[name], "min", text, details[name], what="sequence table")]


DESCRIPTIONS = {
    "sequence_length_tvd": "total variation distance of the number of events per sequence, over parents with at "
                           "least one event (exact counts 1 to 7, then bins 8-15, 16-31, ...)",
    "time_between_events": "Kolmogorov-Smirnov distance between real and synthetic gaps from one event to the "
                           "next within a sequence, in the order column's unit (days for dates; 0 = same "
                           "distribution, 1 = disjoint)",
    "consecutive_pairs_tvd": "mean over columns of the two-way total variation distance between a column's value "
                             "at one event and at the next event of the same sequence",
    "position_marginals_tvd": f"mean total variation distance of each column at each of the first "
                              f"{FIRST_POSITIONS} positions of a sequence (first event, second event, ...)",
}


def _sorted_codes(column: Column, real: pd.DataFrame, synthetic: pd.DataFrame, real_seq: Sequences,
                  synthetic_seq: Sequences) -> list[np.ndarray]:
    """The column's bin codes (bins learnt from the real rows), in sequence order, for both tables."""
    real_codes, synthetic_codes = bin_codes(column, real[column.name], synthetic[column.name])
    return [real_codes[real_seq.rows], synthetic_codes[synthetic_seq.rows]]


def _gaps(seq: Sequences) -> np.ndarray:
    gaps = np.diff(seq.order)[seq.follows]
    return gaps[np.isfinite(gaps)]


def _gap_distance(real: Sequences, synthetic: Sequences) -> tuple[float, dict]:
    real_gaps, synthetic_gaps = _gaps(real), _gaps(synthetic)
    details = {"gaps": {"real": len(real_gaps), "synthetic": len(synthetic_gaps)}}
    if not len(real_gaps) or not len(synthetic_gaps):
        return float(len(real_gaps) != len(synthetic_gaps)), details
    details["median_gap"] = {"real": float(np.median(real_gaps)), "synthetic": float(np.median(synthetic_gaps))}
    return float(ks_2samp(real_gaps, synthetic_gaps).statistic), details


def _pair_codes(codes: np.ndarray, seq: Sequences, width: int) -> np.ndarray:
    """One code per pair of consecutive events of a sequence: (this event's bin, next event's bin)."""
    shifted = codes - OTHER
    return (shifted[:-1] * width + shifted[1:])[seq.follows]


def _consecutive_tvd(real: np.ndarray, synthetic: np.ndarray, real_seq: Sequences, synthetic_seq: Sequences
                     ) -> float:
    width = int(max(real.max(initial=0), synthetic.max(initial=0))) - OTHER + 1
    return tvd_or_disjoint(_pair_codes(real, real_seq, width), _pair_codes(synthetic, synthetic_seq, width))


def _position_tvds(codes: dict[str, list[np.ndarray]], real: Sequences, synthetic: Sequences
                   ) -> dict[int, dict[str, float]]:
    """Per position (1 = first event) present among the real sequences, the TVD of each column there."""
    out = {}
    for position in range(FIRST_POSITIONS):
        at_real, at_synthetic = real.position == position, synthetic.position == position
        if not at_real.any():
            break
        out[position + 1] = {name: tvd_or_disjoint(r[at_real], s[at_synthetic]) for name, (r, s) in codes.items()}
    return out
