"""Which PII kind a column holds, if any, and why: its name and its values judged together."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from tabsynth.pii.compare import is_text
from tabsynth.pii.kinds import PII_KINDS, PiiMatch
from tabsynth.pii.names import detect_pii_by_name
from tabsynth.pii.words import known_names

__all__ = ["PII_KINDS", "PiiMatch", "detect_pii", "detect_pii_by_name"]

_SAMPLE_SIZE = 2_000
_MIN_SHARE = 0.8
_MIN_SHARE_HINTED = 0.6
_MIN_SHARE_NAMED = 0.3  # of values with the kind's mark, in a column whose name names the kind
_NAME_KINDS = ("person_name", "first_name", "last_name", "username", "street_address")


@dataclass(frozen=True)
class _Column:
    name: str
    text: pd.Series  # sampled, stripped, non-empty string values
    hints: frozenset[str]


# ---------------------------------------------------------------- name hints
# Weaker than `detect_pii_by_name`: a hint only lowers the share of matching values a kind needs.
# Person names have none: a column whose name names a person is PII outright (`_check_named`).

_NUMBER_SUFFIX = r"(?:_?(?:no|num|number|nr))?"
_HINT_WORDS: dict[str, str] = {
    "email": r"e_?mail(?:_?address)?",
    "phone": r"(?:tele)?phone|mobile|cell|tel|fax",
    "national_id": r"ssn|social_?security|national_?id|nino|ni_?number|passport",
    "card_number": r"(?:credit_?|debit_?)?card|pan|cc_?num|cc",
    "iban": r"iban|account_?number|acct_?(?:no|num|number)|bank_?account",
    "street_address": r"address|street|addr|address_?line_?\d",
    "free_text": r"notes?|comments?|description|desc|text|remarks?|narrative|feedback|message",
}
_HINTS = {
    kind: re.compile(rf"(?:^|_)(?:{words}){_NUMBER_SUFFIX}(?:_|$)") for kind, words in _HINT_WORDS.items()
}


def _normalise_name(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name))  # camelCase -> camel_Case
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _name_hints(name: str) -> frozenset[str]:
    normalised = _normalise_name(name)
    return frozenset(kind for kind, pattern in _HINTS.items() if pattern.search(normalised))


# ---------------------------------------------------------------- value patterns

_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
_PHONE = r"(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?)?\d+(?:[\s.\-]\d+)*"
_PHONE_EXTENSION = r"\s*(?:x|ext\.?)\s*\d{1,5}$"
# Dates, decimals, ZIP+4 codes and IPv4 addresses have the shape of a phone number but are not one.
_NOT_PHONE = (
    r"\d{4}[\-/.]\d{1,2}[\-/.]\d{1,2}|\d{1,2}[\-/.]\d{1,2}[\-/.]\d{2,4}|\d+\.\d+|\d{5}-\d{4}"
    r"|\d{1,3}(?:\.\d{1,3}){3}"
)
_SSN = r"\d{3}[\- ]\d{2}[\- ]\d{4}"
_NINO = r"[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]"
_CARD = r"\d(?:[ \-]?\d){12,18}"
_IBAN = r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}"
_STREET_ABBREVIATIONS = (
    "St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Pl", "Ter", "Cir", "Hwy", "Pkwy", "Sq", "Trl", "Aly",
    "Close", "Mews", "Gardens", "Grove", "Row",
)
_TITLE = r"(?:(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof)\.?\s+)"
_NAME_TOKEN = r"[A-Z][A-Za-z'\-]*\.?"
# 'Last, First' order is allowed, as in 'Braund, Mr. Owen Harris'.
_PERSON_NAME = rf"{_TITLE}?{_NAME_TOKEN},?(?:\s+{_NAME_TOKEN}){{0,3}}"


@cache
def _street_address_pattern() -> str:
    """House number, 1-4 words, a street suffix, then optionally a unit, a direction and the rest after a comma."""
    from faker.providers.address.en_US import Provider  # its suffixes are the USPS list

    suffixes = "|".join(sorted({*Provider.street_suffixes, *_STREET_ABBREVIATIONS}, key=len, reverse=True))
    return (
        rf"(?is)\d+[A-Z]?(?:-\d+)?\s+(?:[\w'.\-]+\s+){{1,4}}(?:{suffixes})\.?"
        r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\.?)?(?:\s+(?:apt|suite|unit|ste|#)\.?\s*[\w\-]+)?(?:\s*[,\n].*)?"
    )


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _verdict(
    column: _Column, kind: str, share: float, what: str,
    thresholds: tuple[float, float] = (_MIN_SHARE, _MIN_SHARE_HINTED),
) -> PiiMatch | None:
    """A match when `share` reaches the threshold: (without, with) a name hint for `kind`."""
    hinted = kind in column.hints
    if share < thresholds[hinted]:
        return None
    evidence = f"{share:.0%} of values {what}"
    if hinted:
        return PiiMatch(kind, f"column name '{column.name}' and {evidence}")
    return PiiMatch(kind, evidence[0].upper() + evidence[1:])


def _passes_luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _passes_mod97(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _check_email(column: _Column) -> PiiMatch | None:
    share = _share(column.text.str.fullmatch(_EMAIL))
    return _verdict(column, "email", share, "look like e-mail addresses")


def _check_iban(column: _Column) -> PiiMatch | None:
    compact = column.text.str.replace(" ", "", regex=False).str.upper()
    shaped = compact[compact.str.fullmatch(_IBAN)]
    share = sum(map(_passes_mod97, shaped)) / len(column.text)
    return _verdict(column, "iban", share, "are IBANs with a valid mod-97 check")


def _check_card_number(column: _Column) -> PiiMatch | None:
    shaped = column.text[column.text.str.fullmatch(_CARD)]
    digits = shaped.str.replace(r"[ \-]", "", regex=True)
    share = sum(map(_passes_luhn, digits)) / len(column.text)
    return _verdict(column, "card_number", share, "are 13-19 digit numbers that pass the Luhn check")


def _check_national_id(column: _Column) -> PiiMatch | None:
    matches = column.text.str.fullmatch(_SSN) | column.text.str.fullmatch(_NINO)
    if "national_id" in column.hints:  # plain 9 digits are an SSN only when the name says so
        matches |= column.text.str.fullmatch(r"\d{9}")
    share = _share(matches)
    return _verdict(column, "national_id", share, "match a national ID format (US SSN NNN-NN-NNNN or UK NINO)")


def _check_phone(column: _Column) -> PiiMatch | None:
    text = column.text.str.replace(_PHONE_EXTENSION, "", regex=True)
    n_digits = text.str.count(r"\d")
    has_separator = text.str.contains(r"[\s.\-()+]")
    matches = (
        text.str.fullmatch(_PHONE)
        & ~text.str.fullmatch(_NOT_PHONE)
        & n_digits.between(7, 15)
        & (has_separator | (n_digits >= 10))
    )
    return _verdict(column, "phone", _share(matches), "look like phone numbers")


def _check_street_address(column: _Column) -> PiiMatch | None:
    share = _share(column.text.str.fullmatch(_street_address_pattern()))
    return _verdict(column, "street_address", share, "start with a house number and name a street")


def _check_person_name(column: _Column) -> PiiMatch | None:
    """Names by their values alone, for columns whose name does not say (e.g. 'doctor')."""
    text = column.text
    distinct = text.nunique()
    # A handful of names repeated over and over is a category unless the column name says otherwise.
    if distinct < 50 and distinct / len(text) < 0.3:
        return None
    shaped = text[text.str.fullmatch(_PERSON_NAME)].str.replace(f"^{_TITLE}", "", regex=True)
    tokens = shaped.str.replace(",", "", regex=False).str.rstrip(".").str.split()
    tokens = tokens[tokens.str.len() >= 2]  # a lone word ('Jordan', 'Male') is a name only in a column so named
    names = known_names()
    known = tokens.str[0].isin(names) | tokens.str[-1].isin(names)
    share = float(known.sum()) / len(text)
    return _verdict(column, "person_name", share, "are capitalised names with a common first or last name", (0.7, 0.5))


def _check_free_text(column: _Column) -> PiiMatch | None:
    text = column.text
    mean_words = float(text.str.split().str.len().mean())
    mean_chars = float(text.str.len().mean())
    distinct_ratio = text.nunique() / len(text)
    if mean_words < 6 or mean_chars < 30 or distinct_ratio < 0.5:
        return None
    return PiiMatch(
        "free_text",
        f"Values average {mean_words:.0f} words and {mean_chars:.0f} characters, "
        f"{distinct_ratio:.0%} distinct (free text may mention people)",
    )


_VALUE_CHECKS: tuple[Callable[[_Column], PiiMatch | None], ...] = (
    _check_email, _check_iban, _check_card_number, _check_national_id,
    _check_phone, _check_street_address, _check_person_name, _check_free_text,
)


# ---------------------------------------------------------------- detection

def _sample(values: pd.Series) -> pd.Series:
    non_null = values.dropna()
    if len(non_null) > _SAMPLE_SIZE:
        non_null = non_null.sample(n=_SAMPLE_SIZE, random_state=0)
    return non_null


# Kind -> (what a value of the kind has, how often, said how). A column whose name names the kind is PII when
# enough values have it: an 'email' column of yes/no flags is not, a 'surname' column of rare names always is.
_NAMED_MARKS: dict[str, tuple[str, int, str]] = {
    "email": ("@", 1, "contain '@'"),
    "phone": (r"\d", 6, "hold 6 or more digits"),
    "national_id": (r"\d", 4, "hold 4 or more digits"),
    "card_number": (r"\d", 12, "hold 12 or more digits"),
    "iban": (r"\d", 6, "hold 6 or more digits"),
    "postcode": (r"\d", 1, "hold a digit"),
    "date_of_birth": (r"\d", 1, "hold a digit"),
}
_LETTERS = (r"[^\W\d_]", 1, "hold letters")


def _check_named(column: _Column, named: PiiMatch) -> PiiMatch | None:
    """The kind the column name names, when the values bear it out; names are PII however often they repeat."""
    pattern, at_least, what = _NAMED_MARKS.get(named.kind, _LETTERS)
    share = _share(column.text.str.count(pattern) >= at_least)
    if share < _MIN_SHARE_NAMED:
        return None
    reason = f"{named.reason}, and {share:.0%} of values {what}"
    if named.kind in _NAME_KINDS:
        reason += " (PII however few distinct values it has; declare another kind in the schema if not personal)"
    return PiiMatch(named.kind, reason)


def _detect_numeric(values: pd.Series, named: PiiMatch | None) -> PiiMatch | None:
    """Numbers are PII only when the name says so and the digits fit (e.g. 9-digit ints named 'ssn')."""
    if named is None:
        return None
    floats = values.to_numpy(dtype="float64")
    if not np.all(np.isfinite(floats)) or not np.all(floats == np.round(floats)) or np.abs(floats).max() >= 1e19:
        return None  # fractions, or more digits than any id we know (and than int64 holds)
    digits = pd.Series(np.abs(values.to_numpy(dtype="int64")).astype(str))
    n_digits = digits.str.len()
    rules = {  # kind -> (which values fit, description); numbers lose their leading zeros
        "national_id": (n_digits.between(6, 15), "have 6-15 digits like a national id (e.g. a 9-digit SSN)"),
        "phone": (n_digits.between(10, 15), "have 10-15 digits like a phone number"),
        "card_number": (n_digits.between(13, 19) & digits.map(_passes_luhn), "are Luhn-valid card numbers"),
        "postcode": (n_digits.between(3, 5), "have 3-5 digits like a postcode"),
    }
    if named.kind not in rules:
        return None
    fits, what = rules[named.kind]
    share = _share(fits)
    return PiiMatch(named.kind, f"{named.reason}, and {share:.0%} of values {what}") if share >= _MIN_SHARE else None


def detect_pii(name: str, values: pd.Series) -> PiiMatch | None:
    """Return the PII kind of a column, or None, judged on its name and a sample of its non-null values."""
    sample, dtype = _sample(values), values.dtype
    if sample.empty or pd.api.types.is_bool_dtype(dtype):
        return None
    named = detect_pii_by_name(name)
    if pd.api.types.is_numeric_dtype(dtype):
        return _detect_numeric(sample, named)
    if not is_text(dtype):  # datetimes, periods, intervals: PII only as a date of birth
        return named if named is not None and named.kind == "date_of_birth" else None
    text = sample.astype(str).str.strip()
    text = text[text != ""]
    if text.empty:
        return None
    column = _Column(str(name), text.reset_index(drop=True), _name_hints(name))
    if named is not None and (match := _check_named(column, named)):
        return match
    return next((match for check in _VALUE_CHECKS if (match := check(column))), None)
