"""Every metric a policy rule may name, by family: the one list the policy, the gate and `--model auto` read.

Light on purpose (no NumPy): policies are checked before any work.
"""

from __future__ import annotations

import re

SCORES = ("tstr", "trtr", "augmented")  # train on synthetic / on real / on real plus synthetic; test on real

DP = ("dp_epsilon", "dp_delta")  # what the model spent: public
PRIVACY_RISK = ("exact_copy_rate", "holdout_copy_rate", "exact_copy_excess", "dcr_share", "nndr_p5", "mia_auc",
                "singling_out_risk", "linkability_risk", "attribute_inference_risk")
MARGINAL = ("mean_column_tvd", "mean_wasserstein", "category_coverage", "range_coverage")
PAIRS = ("mean_pair_tvd", "correlation_difference")
CLASSIFICATION = (*(f"{score}_auc" for score in SCORES), "minority_class_tvd")  # a binary or categorical target
REGRESSION = tuple(f"{score}_r2" for score in SCORES)  # a numerical target
UTILITY = (*CLASSIFICATION[:3], *REGRESSION, "tstr_ratio", "augmentation_gain", "minority_class_tvd")
FAIRNESS = ("max_subgroup_share_gap", "max_subgroup_target_gap")
CONSTRAINTS = ("constraint_violations", "constraint_valid_share")  # synthetic rows against declared facts
PII = ("pii_leak",)
# Linked datasets (tabsynth.metrics.linked): each per-table metric is also named `<metric>.<table>`; the name alone
# is the worst table, so one rule covers any dataset. The person checks have one figure per dataset.
LINKED_KEYS = ("referential_integrity",)  # synthetic rows only
LINKED_FIDELITY = ("table_column_tvd", "table_pair_tvd", "children_per_parent_tvd", "parent_child_association_gap",
                   "sequence_length_tvd", "time_between_events", "consecutive_pairs_tvd", "position_marginals_tvd")
LINKED_RISK = ("exact_sequence_copies", "person_dcr_share", "person_membership")
LINKED_UTILITY = ("person_tstr_auc", "person_tstr_r2")
LINKED = (*LINKED_KEYS, *LINKED_FIDELITY, *LINKED_RISK, *LINKED_UTILITY)

METRICS = (*DP, *PRIVACY_RISK, *MARGINAL, *PAIRS, *UTILITY, *FAIRNESS, *CONSTRAINTS, *PII, *LINKED)
PER_COLUMN = re.compile(r"^(tvd|wasserstein|subgroup_share_gap|subgroup_target_gap):.+$")
PER_TABLE = re.compile(rf"^({'|'.join((*LINKED_KEYS, *LINKED_FIDELITY))})\..+$")
# Rules that judge joint structure (pairs, correlations, a model trained on the rows) rather than single columns.
JOINT = frozenset({*PAIRS, "tstr_auc", "tstr_r2", "tstr_ratio", "augmented_auc", "augmented_r2",
                   "augmentation_gain", "minority_class_tvd", *FAIRNESS})
# In a DP release, computed from DP or public inputs only; every other metric reads the private rows.
DP_DECISION = frozenset({*DP, *CONSTRAINTS, *LINKED_KEYS})


def is_metric(name: str) -> bool:
    """Whether a policy rule may name this metric."""
    return name in METRICS or bool(PER_COLUMN.match(name) or PER_TABLE.match(name))
