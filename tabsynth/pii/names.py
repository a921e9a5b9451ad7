"""What a column's name alone says: a PII kind, or a key. Public: it reads no value of the table.

A name is split into words (snake_case, camelCase, dots, accents dropped: `PATIENT.LAST_NAME`,
`patientFirstName`, `Téléphone`). It names a kind when it holds one of the kind's head phrases and every
other word qualifies it: a role (`patient_first_name`, `customer_email`), a place in a list
(`address_line_2`, `home_phone`) or a filler (`date_of_birth`, `nombre_del_paciente`). So `first_name`,
`nom`, `Nachname` and `name` name people, while `hospital_name`, `name_of_drug`, `surname_count`,
`n_names`, `filename` and `ip_address` do not.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from tabsynth.pii.kinds import KIND_WORDS, PiiMatch


def _phrases(text: str) -> tuple[tuple[str, ...], ...]:
    """'first name, vorname' -> (('first', 'name'), ('vorname',))."""
    return tuple(tuple(phrase.split()) for phrase in text.split(","))


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that never change what a name means: articles and prepositions of the languages below.
_FILLERS = _words("of the de del der di da du des la le el van von den het")
_ALWAYS = _words("src source raw orig original clean cleaned std norm normalised normalized masked txt text str value")
# Whose value it is: the person the row is about, in English and the common European languages.
_ROLES = _words(
    "patient pt pat person customer cust client contact member employee emp staff user owner holder cardholder "
    "account applicant subject subj participant respondent student parent father mother guardian spouse child kin "
    "doctor dr physician nurse caller sender recipient receiver beneficiary insured policyholder driver tenant "
    "resident donor victim witness author agent teacher visitor guest buyer payer payee emergency next "
    "paciente cliente persona usuario empleado titular personne utilisateur employe paziente utente dipendente "
    "klant persoon gebruiker medewerker kunde mitarbeiter benutzer"
)
_CONTACT = _words(
    "primary secondary home work office personal private alt alternate alternative other current curr previous "
    "prev former old new main billing shipping mailing postal residential residence permanent temporary perm temp "
    "business legal official full complete fixed landline mobile cell"
)
_NUMBER = _words("number no nr num numero nummer code")
_NAME_PARTS = _words(
    "full complete completo completa complet volledige legal preferred birth given family maiden middle first last "
    "second segundo primer primero premier"
)

# Kind -> (head phrases, words that may qualify them). Order matters: 'email address' is an e-mail,
# 'user name' a user name, before 'address' and 'name' are tried.
_KINDS: dict[str, tuple[tuple[tuple[str, ...], ...], frozenset[str]]] = {
    "date_of_birth": (_phrases(
        "dob, date birth, birth date, birthdate, birthday, birth dt, fecha nacimiento, date naissance, "
        "geburtsdatum, geburtstag, data nascita, data nascimento, geboortedatum"), _ROLES),
    "email": (_phrases(
        "email, e mail, mail, emailaddress, correo, courriel, posta elettronica"),
        _ROLES | _CONTACT | _words("address adresse adres addr indirizzo direccion electronico electronique")),
    "username": (_phrases("username, user name, login name, login id, screen name"), _ROLES),
    "card_number": (_phrases(
        "card number, card no, card num, credit card, creditcard, debit card, cc num, cc number, ccnum, cc no"),
        _ROLES | _NUMBER),
    "iban": (_phrases("iban, bank account, bankaccount"), _ROLES | _NUMBER),
    "national_id": (_phrases(
        "ssn, social security, national id, national insurance, nino, ni number, passport, nhs number, dni, nie, "
        "nif, nss, codice fiscale, bsn, burgerservicenummer, nir, securite sociale, steuer id, steuerid, "
        "steuernummer, steueridentifikationsnummer, sozialversicherungsnummer, tax id, taxpayer id, personnummer, "
        "pesel, driver license, drivers license, driving licence, driving license"), _ROLES | _NUMBER),
    "phone": (_phrases(
        "phone, telephone, tel, telefono, telefon, telefoon, telefone, mobile, mobil, cellphone, cell phone, "
        "fax, movil, cellulare, gsm, handynummer"), _ROLES | _CONTACT | _NUMBER),
    "postcode": (_phrases(
        "zip, zipcode, zip code, postcode, post code, postal code, postalcode, codigo postal, code postal, plz, "
        "postleitzahl, cap, postnummer"), _ROLES | _CONTACT),
    "first_name": (_phrases(
        "first name, firstname, given name, givenname, forename, middle name, middlename, christian name, "
        "vorname, prenom, voornaam, nombre pila, imie"), _ROLES | _NAME_PARTS),
    "last_name": (_phrases(
        "last name, lastname, surname, family name, familyname, maiden name, apellido, apellidos, nachname, "
        "familienname, zuname, cognome, achternaam, sobrenome, nom famille, nazwisko"), _ROLES | _NAME_PARTS),
    "person_name": (_phrases("name, fullname, nombre, nom, nome, naam"), _ROLES | _NAME_PARTS),
    "street_address": (_phrases(
        "address, addr, street, adresse, adres, direccion, domicilio, indirizzo, anschrift, strasse, straat, calle"),
        _ROLES | _CONTACT | _NUMBER | _words("line street name")),
}

# Keys: a last word such as 'id', or a joined word such as 'patientid' ('paid', 'covid' and 'valid' are not keys).
_KEY_WORDS = _words("id ids key uuid guid identifier ident mrn pk")
_KEY_PHRASES = _phrases("record number, record no, record nr, patient number, patient no, hospital number")
_KEY_ENTITIES = (
    "patient subject subj pat cust customer user client member person account acct record visit encounter case "
    "sample order transaction txn trans session device item product employee emp student household study site "
    "hospital hosp admission adm stay"
)
_JOINED_KEY = re.compile(rf"(?:{'|'.join(_KEY_ENTITIES.split())})_?(?:id|key|uuid)")
# 'id_type' or 'key_figure' describe something; 'id_paciente' is a key.
_NOT_A_KEY_AFTER = _words("type kind class category status flag count n len length format version issuer issued "
                          "expiry expires verified valid present missing")


@cache
def name_words(name: str) -> tuple[str, ...]:
    """The words of a column name, lower case, without accents; digits are words of their own."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)  # camelCase
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)  # ZIPCode
    text = re.sub(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", " ", text.casefold())
    return tuple(word for word in re.split(r"[^a-z0-9]+", text) if word and word not in _FILLERS)


def _names_with(words: tuple[str, ...], heads, qualifiers: frozenset[str]) -> bool:
    allowed = qualifiers | _ALWAYS
    for head in heads:
        for start in range(len(words) - len(head) + 1):
            if words[start:start + len(head)] == head:
                rest = words[:start] + words[start + len(head):]
                if all(word in allowed or word.isdigit() for word in rest):
                    return True
    return False


def detect_pii_by_name(name: str) -> PiiMatch | None:
    """The PII kind a column name announces, judged on the name alone (safe before any private value is read)."""
    words = name_words(name)
    for kind, (heads, qualifiers) in _KINDS.items():
        if _names_with(words, heads, qualifiers):
            return PiiMatch(kind, f"column name {name!r} names {KIND_WORDS[kind]}")
    return None


def is_key_name(name: str) -> bool:
    """Whether a column's name alone says it holds keys: `id`, `subject_id`, `PatientID`, `patientid`, `mrn`,
    `id_paciente`, `medical_record_number` (not `paid`, `covid`, `id_type`)."""
    words = name_words(name)
    if not words:
        return False
    if words[-1] in _KEY_WORDS or _JOINED_KEY.fullmatch(words[-1]):
        return True
    if any(words[-len(phrase):] == phrase for phrase in _KEY_PHRASES):
        return True
    return words[0] in ("id", "key") and len(words) > 1 and not _NOT_A_KEY_AFTER.intersection(words[1:])
