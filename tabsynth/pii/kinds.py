"""The PII kinds tabsynth knows, and the verdict type of detection."""

from __future__ import annotations

from dataclasses import dataclass

# Kind -> the words a reason uses for it.
KIND_WORDS: dict[str, str] = {
    "person_name": "a person's name",
    "first_name": "a first (given) name",
    "last_name": "a last (family) name",
    "username": "a user name",
    "email": "an e-mail address",
    "phone": "a phone number",
    "national_id": "a national identity or tax number",
    "card_number": "a payment card number",
    "iban": "a bank account number",
    "street_address": "a street address",
    "postcode": "a postcode",
    "date_of_birth": "a date of birth",
    "free_text": "free text",
}
PII_KINDS: tuple[str, ...] = tuple(KIND_WORDS)


@dataclass(frozen=True)
class PiiMatch:
    kind: str
    reason: str
