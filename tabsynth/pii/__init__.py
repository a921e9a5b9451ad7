"""PII detection for table columns, and generators of safe replacement values.

Detection is rule based so every verdict can be explained: a rule weighs a hint in the column name and
the share of sampled values matching a pattern, and `PiiMatch.reason` says which evidence fired.
Generated values are fake by construction (reserved domains, fictional number ranges, test card prefixes).
"""

from tabsynth.pii.detect import PII_KINDS, PiiMatch, detect_pii
from tabsynth.pii.fake import fake_values, unique_keys

__all__ = ["PII_KINDS", "PiiMatch", "detect_pii", "fake_values", "unique_keys"]
