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

METRICS = (*DP, *PRIVACY_RISK, *MARGINAL, *PAIRS, *UTILITY, *FAIRNESS, *CONSTRAINTS, *PII)
PER_COLUMN = re.compile(r"^(tvd|wasserstein|subgroup_share_gap|subgroup_target_gap):.+$")
# Rules that judge joint structure (pairs, correlations, a model trained on the rows) rather than single columns.
JOINT = frozenset({*PAIRS, "tstr_auc", "tstr_r2", "tstr_ratio", "augmented_auc", "augmented_r2",
                   "augmentation_gain", "minority_class_tvd", *FAIRNESS})
# In a DP release, computed from DP or public inputs only; every other metric reads the private rows.
DP_DECISION = frozenset({*DP, *CONSTRAINTS})
