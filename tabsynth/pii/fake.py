"""Fake values that cannot be real: reserved domains, fictional number ranges, test card prefixes. Names,
postcodes and birth dates can coincide with real ones; given the real values, fakes are redrawn until none does."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import pandas as pd

from tabsynth.pii.compare import comparable
from tabsynth.pii.kinds import PII_KINDS
from tabsynth.pii.words import first_and_last_names, lorem_words

_EMAIL_DOMAINS = np.array(["example.com", "example.org", "example.net"], dtype=object)  # RFC 2606
_ADDRESS_SUFFIXES = np.array(
    ["Street", "Avenue", "Road", "Lane", "Drive", "Court", "Place", "Way", "Boulevard", "Terrace"], dtype=object
)
_CARD_PREFIX = (4, 0, 0, 0, 0, 0)  # Visa test range 4000 00..., never issued to card holders
_IBAN_BANK_CODE = (0,) * 8  # German bank codes start with a clearing-area digit 1-8, so 0... is fictional
_IBAN_DE00 = (1, 3, 1, 4, 0, 0)  # 'DE' + '00' with letters as numbers (D=13, E=14), for the ISO 13616 check
_DIGIT_CHARS = np.array(list("0123456789"))
_BIRTH_DAYS = (np.datetime64("1930-01-01"), np.datetime64("2010-01-01"))
_REDRAWS = 40  # rounds of redrawing fakes that equal a real value; the wider generators take the second half
_HEX_CHARS = np.array(list("0123456789ABCDEF"))


def _pick(options: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return options[rng.integers(0, len(options), n)]


def _zero_padded(numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(numbers.astype(str), width).astype(object)


def _join_chars(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rows of a (n, k) code matrix -> n strings of k characters taken from `table`."""
    n, k = codes.shape
    chars = np.ascontiguousarray(table[codes])
    return chars.view(f"<U{k}").reshape(n).astype(object)


def _fake_person_name(n: int, rng: np.random.Generator) -> np.ndarray:
    first, last = first_and_last_names()
    return _pick(first, n, rng) + " " + _pick(last, n, rng)


def _fake_first_name(n: int, rng: np.random.Generator) -> np.ndarray:
    return _pick(first_and_last_names()[0], n, rng)


def _fake_last_name(n: int, rng: np.random.Generator) -> np.ndarray:
    return _pick(first_and_last_names()[1], n, rng)


def _double_first_name(n: int, rng: np.random.Generator) -> np.ndarray:
    return _fake_first_name(n, rng) + "-" + _fake_first_name(n, rng)


def _double_last_name(n: int, rng: np.random.Generator) -> np.ndarray:
    return _fake_last_name(n, rng) + "-" + _fake_last_name(n, rng)


def _fake_username(n: int, rng: np.random.Generator) -> np.ndarray:
    return "user_" + _join_chars(_HEX_CHARS, rng.integers(0, 16, (n, 8)))


def _fake_postcode(n: int, rng: np.random.Generator) -> np.ndarray:
    return _zero_padded(rng.integers(0, 500, n), 5)  # US ZIP codes 00000-00499 are not assigned


def _wide_postcode(n: int, rng: np.random.Generator) -> np.ndarray:
    return _zero_padded(rng.integers(0, 100_000, n), 6)  # six digits starting with 0


def _fake_date_of_birth(n: int, rng: np.random.Generator) -> np.ndarray:
    start, end = _BIRTH_DAYS
    days = rng.integers(0, int((end - start).astype(int)), n)
    return (start + days.astype("timedelta64[D]")).astype(str).astype(object)


def _fake_email(n: int, rng: np.random.Generator) -> np.ndarray:
    first, last = first_and_last_names()
    local = _pick(first, n, rng) + "." + _pick(last, n, rng) + rng.integers(1, 100, n).astype(str).astype(object)
    return np.char.lower(local.astype(str)).astype(object) + "@" + _pick(_EMAIL_DOMAINS, n, rng)


def _fake_phone(n: int, rng: np.random.Generator) -> np.ndarray:
    area = rng.integers(200, 1000, n)
    area[area % 100 == 11] += 1  # N11 codes are service numbers, not area codes
    return "(" + area.astype(str).astype(object) + ") 555-01" + _zero_padded(rng.integers(0, 100, n), 2)


def _fake_national_id(n: int, rng: np.random.Generator) -> np.ndarray:
    area = rng.integers(900, 1000, n).astype(str).astype(object)  # SSN areas 900-999 are never issued
    group = _zero_padded(rng.integers(1, 100, n), 2)
    serial = _zero_padded(rng.integers(1, 10_000, n), 4)
    return area + "-" + group + "-" + serial


def _luhn_check_digits(body: np.ndarray) -> np.ndarray:
    """Check digit for each row of a (n, k) digit matrix; the digit left of the check digit is doubled."""
    from_right = body[:, ::-1].copy()
    from_right[:, 0::2] *= 2
    from_right[from_right > 9] -= 9
    return (10 - from_right.sum(axis=1) % 10) % 10


def _repeated(digits: tuple[int, ...], n: int) -> np.ndarray:
    return np.broadcast_to(np.array(digits), (n, len(digits)))


def _fake_card_number(n: int, rng: np.random.Generator) -> np.ndarray:
    body = np.hstack([_repeated(_CARD_PREFIX, n), rng.integers(0, 10, (n, 15 - len(_CARD_PREFIX)))])
    digits = np.hstack([body, _luhn_check_digits(body)[:, None]])
    return _join_chars(_DIGIT_CHARS, digits)


def _mod97(digits: np.ndarray) -> np.ndarray:
    remainder = np.zeros(len(digits), dtype=np.int64)
    for column in digits.T:
        remainder = (remainder * 10 + column) % 97
    return remainder


def _fake_iban(n: int, rng: np.random.Generator) -> np.ndarray:
    bban = np.hstack([_repeated(_IBAN_BANK_CODE, n), rng.integers(0, 10, (n, 10))])
    check = 98 - _mod97(np.hstack([bban, _repeated(_IBAN_DE00, n)]))
    return "DE" + _zero_padded(check, 2) + _join_chars(_DIGIT_CHARS, bban)


def _fake_street_address(n: int, rng: np.random.Generator) -> np.ndarray:
    _, last = first_and_last_names()
    number = rng.integers(1, 10_000, n).astype(str).astype(object)
    return number + " " + _pick(last, n, rng) + " " + _pick(_ADDRESS_SUFFIXES, n, rng)


def _fake_free_text(n: int, rng: np.random.Generator) -> np.ndarray:
    """1-3 sentences of 6-12 lorem words, assembled without a Python loop over rows."""
    words, capitalised = lorem_words()
    sentences_per_row = rng.integers(1, 4, n)
    sentence_lengths = rng.integers(6, 13, int(sentences_per_row.sum()))
    sentence_ends = np.cumsum(sentence_lengths) - 1
    sentence_starts = sentence_ends - sentence_lengths + 1
    word_ids = rng.integers(0, len(words), int(sentence_lengths.sum()))
    tokens = words[word_ids]
    tokens[sentence_starts] = capitalised[word_ids[sentence_starts]]
    separators = np.full(len(tokens), " ", dtype=object)
    separators[sentence_ends] = ". "
    row_last_sentence = np.cumsum(sentences_per_row) - 1
    separators[sentence_ends[row_last_sentence]] = "."
    row_starts = sentence_starts[row_last_sentence - sentences_per_row + 1]
    return np.add.reduceat(tokens + separators, row_starts)


Generator = Callable[[int, np.random.Generator], np.ndarray]
_GENERATORS: dict[str, Generator] = {
    "person_name": _fake_person_name, "first_name": _fake_first_name, "last_name": _fake_last_name,
    "username": _fake_username, "email": _fake_email, "phone": _fake_phone,
    "national_id": _fake_national_id, "card_number": _fake_card_number, "iban": _fake_iban,
    "street_address": _fake_street_address, "postcode": _fake_postcode, "date_of_birth": _fake_date_of_birth,
    "free_text": _fake_free_text,
}
# When a real table holds most of Faker's names (or of the 500 fake postcodes), redrawing from the same
# list cannot escape them.
_WIDER: dict[str, Generator] = {
    "first_name": _double_first_name, "last_name": _double_last_name, "postcode": _wide_postcode,
}


def fake_values(kind: str, n: int, rng: np.random.Generator, avoid: Collection[str] = ()) -> np.ndarray:
    """n safe fake values (object array of str) of one PII kind, drawn only from `rng`. Values in `avoid`
    (spelt as `comparable` spells them: the real values) are redrawn, a bounded number of times."""
    if kind not in _GENERATORS:
        raise ValueError(f"unknown PII kind {kind!r}; expected one of {', '.join(PII_KINDS)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return np.empty(0, dtype=object)
    values = np.asarray(_GENERATORS[kind](n, rng), dtype=object)
    return _redrawn(kind, values, avoid, rng) if avoid else values


def _redrawn(kind: str, values: np.ndarray, avoid: Collection[str], rng: np.random.Generator) -> np.ndarray:
    """Redraw the values equal to a real one; any left after the last round are caught by the pii_leak rule."""
    avoid = avoid if isinstance(avoid, (set, frozenset)) else frozenset(avoid)
    clashing = np.flatnonzero(comparable(pd.Series(values)).isin(avoid).to_numpy())
    for round_ in range(_REDRAWS):
        if not clashing.size:
            break
        generate = _WIDER.get(kind, _GENERATORS[kind]) if round_ >= _REDRAWS // 2 else _GENERATORS[kind]
        values[clashing] = generate(clashing.size, rng)
        clashing = clashing[comparable(pd.Series(values[clashing])).isin(avoid).to_numpy()]
    return values


def unique_keys(n: int, rng: np.random.Generator, *, integer: bool, width: int = 12) -> np.ndarray:
    """n distinct keys: int64 1..n in random order, or strings of `width` uppercase hex characters."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if integer:
        return rng.permutation(n).astype(np.int64) + 1
    if width < 8:
        raise ValueError(f"width must be at least 8 hex characters, got {width}")
    if n > 16**width:
        raise ValueError(f"cannot make {n} distinct keys of {width} hex characters")
    keys = _join_chars(_HEX_CHARS, rng.integers(0, 16, (n, width)))
    while (duplicated := pd.Series(keys).duplicated().to_numpy()).any():  # redraw collisions until distinct
        keys[duplicated] = _join_chars(_HEX_CHARS, rng.integers(0, 16, (int(duplicated.sum()), width)))
    return keys
