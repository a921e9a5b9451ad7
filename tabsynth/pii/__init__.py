"""PII detection for table columns, and generators of safe replacement values.

Detection is rule based so every verdict can be explained: the column's name (`detect_pii_by_name`, public,
reads no value) and the share of sampled values matching a pattern, and `PiiMatch.reason` says which
evidence fired. Generated values are fake by construction (reserved domains, fictional number ranges, test
card prefixes) and, given the real values, never equal one of them.
"""

from tabsynth.pii.compare import comparable, values_to_avoid
from tabsynth.pii.detect import detect_pii
from tabsynth.pii.fake import fake_values, unique_keys
from tabsynth.pii.kinds import PII_KINDS, PiiMatch
from tabsynth.pii.names import detect_pii_by_name, is_key_name

__all__ = [
    "PII_KINDS", "PiiMatch", "comparable", "detect_pii", "detect_pii_by_name", "fake_values", "is_key_name",
    "unique_keys", "values_to_avoid",
]
