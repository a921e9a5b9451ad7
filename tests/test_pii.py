"""Tests for tabsynth.pii: detection on realistic columns, safe fake values, unique keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from tabsynth.pii import (
    PII_KINDS,
    PiiMatch,
    comparable,
    detect_pii,
    detect_pii_by_name,
    fake_values,
    is_key_name,
    unique_keys,
)

ADULT_CSV = Path(__file__).resolve().parent / "data" / "adult.csv.gz"
N_ROWS = 400
# Kinds whose values give them away without a telling column name; the others need the name.
VALUE_KINDS = ("person_name", "email", "phone", "national_id", "card_number", "iban", "street_address", "free_text")
NAMED_ONLY = {"first_name": "first_name", "last_name": "surname", "username": "username", "postcode": "zip",
              "date_of_birth": "date_of_birth"}


# ---------------------------------------------------------------- independent reference checks

def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    odd, even = digits[-1::-2], digits[-2::-2]
    return (sum(odd) + sum(sum(divmod(2 * d, 10)) for d in even)) % 10 == 0


def with_luhn_digit(body: str) -> str:
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def iban_ok(iban: str) -> bool:
    iban = iban.replace(" ", "")
    return int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1


def make_iban(country: str, bban: str) -> str:
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


# ---------------------------------------------------------------- realistic inputs

@pytest.fixture(scope="module")
def faker() -> Faker:
    fake = Faker("en_US")
    fake.seed_instance(1234)
    return fake


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _names(faker: Faker) -> list[str]:
    return [faker.name() for _ in range(N_ROWS)]


def _emails(faker: Faker, rng: np.random.Generator) -> list[str]:
    domains = ["gmail.com", "yahoo.com", "outlook.com", "acme-corp.co.uk"]
    return [
        f"{faker.first_name().lower()}.{faker.last_name().lower()}{rng.integers(1, 100)}@{rng.choice(domains)}"
        for _ in range(N_ROWS)
    ]


def _phones(rng: np.random.Generator) -> list[str]:
    formats = ["+1 ({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "({a}) {b} {c}", "+44 20 {b}{c}"]
    return [
        rng.choice(formats).format(a=rng.integers(201, 990), b=rng.integers(200, 1000), c=rng.integers(1000, 10000))
        for _ in range(N_ROWS)
    ]


def _ssns(rng: np.random.Generator) -> list[str]:
    def one() -> str:
        return f"{rng.integers(1, 900):03d}-{rng.integers(1, 100):02d}-{rng.integers(1, 10000):04d}"

    return [one() for _ in range(N_ROWS)]


def _ninos(rng: np.random.Generator) -> list[str]:
    letters = list("ABCEGHJKLMNPRSTWXYZ")
    return [
        f"{rng.choice(letters)}{rng.choice(letters)}{rng.integers(0, 1_000_000):06d}{rng.choice(list('ABCD'))}"
        for _ in range(N_ROWS)
    ]


def _cards(rng: np.random.Generator) -> list[str]:
    cards = []
    for i in range(N_ROWS):
        number = with_luhn_digit(str(rng.choice([4, 5])) + "".join(map(str, rng.integers(0, 10, 14))))
        cards.append(" ".join(number[j:j + 4] for j in range(0, 16, 4)) if i % 3 == 0 else number)
    return cards


def _ibans(rng: np.random.Generator) -> list[str]:
    known = ["DE89370400440532013000", "GB82WEST12345698765432"]
    made = []
    for _ in range(N_ROWS - len(known)):
        digits = "".join(map(str, rng.integers(0, 10, 18)))
        made.append(make_iban("DE", digits) if rng.random() < 0.5 else make_iban("GB", "WEST" + digits[:14]))
    return known + made


def _addresses(faker: Faker, rng: np.random.Generator) -> list[str]:
    suffixes = ["St", "Street", "Ave", "Avenue", "Rd", "Road", "Blvd", "Lane", "Dr", "Way", "Court", "Place"]
    return [
        f"{rng.integers(1, 9999)} {faker.last_name()} {rng.choice(suffixes)}"
        + (", Apt 4B" if rng.random() < 0.2 else "")
        for _ in range(N_ROWS)
    ]


def _free_text(faker: Faker) -> list[str]:
    return [faker.paragraph(nb_sentences=2) for _ in range(N_ROWS)]


@pytest.fixture(scope="module")
def pii_columns(faker: Faker, rng: np.random.Generator) -> dict[str, list[str]]:
    return {
        "person_name": _names(faker),
        "email": _emails(faker, rng),
        "phone": _phones(rng),
        "national_id": _ssns(rng),
        "card_number": _cards(rng),
        "iban": _ibans(rng),
        "street_address": _addresses(faker, rng),
        "free_text": _free_text(faker),
    }


HINTED_NAMES = {
    "person_name": "customer_name",
    "email": "contactEmail",
    "phone": "Phone Number",
    "national_id": "ssn",
    "card_number": "cc_num",
    "iban": "iban",
    "street_address": "street_address",
    "free_text": "notes",
}


# ---------------------------------------------------------------- detection: positives

def test_every_kind_is_covered() -> None:
    assert set(VALUE_KINDS) | set(NAMED_ONLY) == set(PII_KINDS)


@pytest.mark.parametrize("kind", VALUE_KINDS)
@pytest.mark.parametrize("named", [True, False], ids=["hinted-name", "neutral-name"])
def test_detects_each_kind(pii_columns: dict[str, list[str]], kind: str, named: bool) -> None:
    name = HINTED_NAMES[kind] if named else "col_a"
    match = detect_pii(name, pd.Series(pii_columns[kind]))
    assert isinstance(match, PiiMatch)
    assert match.kind == kind
    assert match.reason.strip()


def test_reason_mentions_name_hint(pii_columns: dict[str, list[str]]) -> None:
    match = detect_pii("ssn", pd.Series(pii_columns["national_id"]))
    assert match is not None and "'ssn'" in match.reason and "%" in match.reason


def test_detects_uk_nino(rng: np.random.Generator) -> None:
    match = detect_pii("col_a", pd.Series(_ninos(rng)))
    assert match is not None and match.kind == "national_id"


def test_ignores_nulls_when_judging(pii_columns: dict[str, list[str]]) -> None:
    emails = pd.Series(pii_columns["email"] + [None] * N_ROWS + [np.nan] * N_ROWS, dtype=object)
    match = detect_pii("col_a", emails)
    assert match is not None and match.kind == "email"


def test_name_hint_lowers_threshold(pii_columns: dict[str, list[str]]) -> None:
    # 70% e-mails, 30% junk: below the plain 80% bar, above the hinted 60% bar.
    mixed = pii_columns["email"][: int(N_ROWS * 0.7)] + ["n/a"] * int(N_ROWS * 0.3)
    assert detect_pii("col_a", pd.Series(mixed)) is None
    match = detect_pii("email", pd.Series(mixed))
    assert match is not None and match.kind == "email"


def test_few_repeated_names_are_a_category_unless_hinted(faker: Faker) -> None:
    doctors = [faker.name() for _ in range(5)] * 80
    assert detect_pii("doctor", pd.Series(doctors)) is None
    match = detect_pii("doctor_name", pd.Series(doctors))
    assert match is not None and match.kind == "person_name"


@pytest.mark.parametrize(
    ("name", "values", "kind"),
    [
        ("ssn", np.arange(123_456_789, 123_456_789 + 300 * 7919, 7919, dtype=np.int64), "national_id"),
        ("phone", np.arange(4_155_550_000, 4_155_550_300, dtype=np.int64), "phone"),
    ],
)
def test_numeric_columns_flagged_only_by_name_and_digits(name: str, values: np.ndarray, kind: str) -> None:
    match = detect_pii(name, pd.Series(values))
    assert match is not None and match.kind == kind
    assert detect_pii("measurement", pd.Series(values)) is None


def test_detects_faker_street_addresses(faker: Faker) -> None:
    # Faker uses the full USPS suffix list and unit numbers: '0487 Hull Village Suite 759'.
    match = detect_pii("col_a", pd.Series([faker.street_address() for _ in range(N_ROWS)]))
    assert match is not None and match.kind == "street_address"


def test_detects_last_first_names_and_hinted_single_names(faker: Faker) -> None:
    last_first = [f"{faker.last_name()}, {faker.prefix()} {faker.first_name()}" for _ in range(N_ROWS)]
    assert detect_pii("col_a", pd.Series(last_first)).kind == "person_name"
    first_names = pd.Series([faker.first_name() for _ in range(N_ROWS)])
    assert detect_pii("first_name", first_names).kind == "first_name"
    assert detect_pii("col_a", first_names) is None  # a lone word needs the column name to be a name


def test_detects_phones_with_extensions(rng: np.random.Generator) -> None:
    phones = [f"{rng.integers(201, 990)}.{rng.integers(200, 1000)}.{rng.integers(1000, 10000)}x{rng.integers(1, 999)}"
              for _ in range(N_ROWS)]
    assert detect_pii("col_a", pd.Series(phones)).kind == "phone"


@pytest.mark.parametrize("name", ["filename", "hostname", "file_name", "drug_name", "hospital_name", "name_of_drug"])
def test_name_like_column_names_are_not_person_hints(faker: Faker, name: str) -> None:
    # A few repeated names would only count as PII if the column name said 'name' of a person.
    doctors = [faker.name() for _ in range(5)] * 80
    assert detect_pii(name, pd.Series(doctors)) is None


# ---------------------------------------------------------------- detection: negatives

@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return pd.read_csv(ADULT_CSV)


def test_adult_has_all_columns(adult: pd.DataFrame) -> None:
    assert adult.shape[1] == 15


@pytest.mark.parametrize("column", range(15))
def test_adult_census_columns_are_not_pii(adult: pd.DataFrame, column: int) -> None:
    name = adult.columns[column]
    assert detect_pii(name, adult[name]) is None


def _negative_columns() -> dict[str, pd.Series]:
    rng = np.random.default_rng(7)
    dates = pd.date_range("2020-01-01", periods=N_ROWS, freq="D")
    return {
        "small_ints": pd.Series(rng.integers(0, 100, N_ROWS)),
        "floats": pd.Series(rng.normal(50, 10, N_ROWS)),
        "yes_no": pd.Series(rng.choice(["yes", "no"], N_ROWS)),
        "codes": pd.Series(rng.choice(["A11", "A12", "A13", "B21", "C34"], N_ROWS)),
        "iso_dates": pd.Series(dates.strftime("%Y-%m-%d")),
        "record_id": pd.Series(rng.integers(100_000_000, 1_000_000_000, N_ROWS)),
        "ssn": pd.Series(rng.integers(0, 100, N_ROWS)),  # hinted name, but the digits do not fit
        "decimals_as_text": pd.Series(rng.normal(1000, 100, N_ROWS).round(4).astype(str)),
        "filename": pd.Series([f"report_{i}.csv" for i in range(N_ROWS)]),
        "ip_address": pd.Series([".".join(map(str, rng.integers(1, 255, 4))) for _ in range(N_ROWS)]),
        "zip_plus4": pd.Series([f"{rng.integers(10000, 99999)}-{rng.integers(1000, 9999)}" for _ in range(N_ROWS)]),
        "short_sentences": pd.Series(rng.choice(["Paid in full.", "Late fee applied.", "Refunded."], N_ROWS)),
        "empty": pd.Series([np.nan] * 10, dtype=object),
    }


@pytest.mark.parametrize("name", list(_negative_columns()))
def test_ordinary_columns_are_not_pii(name: str) -> None:
    assert detect_pii(name, _negative_columns()[name]) is None


def test_empty_series_is_not_pii() -> None:
    assert detect_pii("email", pd.Series([], dtype=object)) is None


# ---------------------------------------------------------------- fake values

@pytest.mark.parametrize("kind", PII_KINDS)
def test_fake_values_shape_and_type(kind: str) -> None:
    values = fake_values(kind, 1000, np.random.default_rng(0))
    assert values.shape == (1000,)
    assert values.dtype == object
    assert all(isinstance(v, str) and v for v in values)


@pytest.mark.parametrize("kind", PII_KINDS)
def test_fake_values_are_deterministic(kind: str) -> None:
    first = fake_values(kind, 1000, np.random.default_rng(42))
    again = fake_values(kind, 1000, np.random.default_rng(42))
    other = fake_values(kind, 1000, np.random.default_rng(43))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("kind", PII_KINDS)
def test_fake_values_round_trip_through_detection(kind: str) -> None:
    values = fake_values(kind, 500, np.random.default_rng(5))
    name = NAMED_ONLY.get(kind, "c")  # a neutral name where the values alone must give the kind away
    match = detect_pii(name, pd.Series(values))
    assert match is not None and match.kind == kind


def test_fake_values_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown PII kind"):
        fake_values("blood_type", 10, np.random.default_rng(0))


def test_fake_values_zero_rows() -> None:
    assert fake_values("email", 0, np.random.default_rng(0)).shape == (0,)


def test_fake_emails_use_reserved_domains() -> None:
    emails = fake_values("email", 1000, np.random.default_rng(1))
    assert all(e.endswith(("@example.com", "@example.org", "@example.net")) for e in emails)


def test_fake_phones_are_fictional() -> None:
    phones = pd.Series(fake_values("phone", 1000, np.random.default_rng(1)))
    assert phones.str.fullmatch(r"\([2-9]\d\d\) 555-01\d\d").all()


def test_fake_ssns_use_never_issued_area() -> None:
    ssns = pd.Series(fake_values("national_id", 1000, np.random.default_rng(1)))
    assert ssns.str.fullmatch(r"\d{3}-\d{2}-\d{4}").all()
    assert (ssns.str[:3].astype(int) >= 900).all()
    assert (ssns.str[4:6] != "00").all() and (ssns.str[7:] != "0000").all()


def test_fake_cards_are_luhn_valid_test_numbers() -> None:
    cards = fake_values("card_number", 1000, np.random.default_rng(1))
    assert all(luhn_ok(c) and c.startswith("400000") and len(c) == 16 for c in cards)


def test_fake_ibans_pass_mod97() -> None:
    ibans = fake_values("iban", 1000, np.random.default_rng(1))
    assert all(iban_ok(i) and len(i) == 22 for i in ibans)


def test_fake_free_text_is_one_to_three_sentences() -> None:
    texts = pd.Series(fake_values("free_text", 1000, np.random.default_rng(1)))
    sentences = texts.str.count(r"\.")
    assert sentences.between(1, 3).all() and set(sentences) == {1, 2, 3}
    assert texts.str.match(r"[A-Z]").all() and texts.str.endswith(".").all()


def test_fake_values_large_n_runs() -> None:
    # A sanity check that large n works; timing is deliberately not asserted.
    for kind in PII_KINDS:
        assert len(fake_values(kind, 100_000, np.random.default_rng(3))) == 100_000


# ---------------------------------------------------------------- unique keys

def test_unique_integer_keys() -> None:
    keys = unique_keys(10_000, np.random.default_rng(0), integer=True)
    assert keys.dtype == np.int64
    assert np.array_equal(np.sort(keys), np.arange(1, 10_001))
    assert not np.array_equal(keys, np.arange(1, 10_001))
    assert np.array_equal(keys, unique_keys(10_000, np.random.default_rng(0), integer=True))


@pytest.mark.parametrize("width", [8, 12, 20])
def test_unique_hex_keys(width: int) -> None:
    keys = unique_keys(10_000, np.random.default_rng(0), integer=False, width=width)
    assert len(set(keys)) == 10_000
    assert pd.Series(keys).str.fullmatch(rf"[0-9A-F]{{{width}}}").all()
    assert np.array_equal(keys, unique_keys(10_000, np.random.default_rng(0), integer=False, width=width))


def test_hex_keys_stay_distinct_when_collisions_are_likely() -> None:
    # 200,000 draws from 16**8 values collide a few times; the duplicates must be redrawn.
    keys = unique_keys(200_000, np.random.default_rng(0), integer=False, width=8)
    assert len(set(keys)) == 200_000


def test_hex_keys_reject_short_width() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        unique_keys(10, np.random.default_rng(0), integer=False, width=6)


# ---------------------------------------------------------------- column names

@pytest.mark.parametrize(("name", "kind"), [
    ("patient_first_name", "first_name"), ("PATIENT.LAST_NAME", "last_name"), ("patientFirstName", "first_name"),
    ("name", "person_name"), ("Full Name", "person_name"), ("name_of_patient", "person_name"),
    ("doctor_name", "person_name"), ("maiden_name", "last_name"), ("username", "username"),
    ("nombre", "person_name"), ("apellidos", "last_name"), ("nom", "person_name"), ("prénom", "first_name"),
    ("Vorname", "first_name"), ("Nachname", "last_name"), ("cognome", "last_name"), ("achternaam", "last_name"),
    ("nombre_del_paciente", "person_name"), ("telefono", "phone"), ("Téléphone", "phone"), ("Telefon", "phone"),
    ("home_phone", "phone"), ("correo", "email"), ("courriel", "email"), ("e-mail", "email"),
    ("email_address", "email"), ("dirección", "street_address"), ("Adresse", "street_address"),
    ("indirizzo", "street_address"), ("address_line_2", "street_address"), ("código_postal", "postcode"),
    ("code postal", "postcode"), ("PLZ", "postcode"), ("CAP", "postcode"), ("ZIPCode", "postcode"),
    ("fecha_de_nacimiento", "date_of_birth"), ("date de naissance", "date_of_birth"),
    ("Geburtsdatum", "date_of_birth"), ("DateOfBirth", "date_of_birth"), ("dob", "date_of_birth"),
    ("DNI", "national_id"), ("NIE", "national_id"), ("codice_fiscale", "national_id"), ("BSN", "national_id"),
    ("NIR", "national_id"), ("Steuer-ID", "national_id"), ("ssn", "national_id"), ("iban", "iban"),
    ("credit_card_number", "card_number"),
])
def test_column_names_name_pii(name: str, kind: str) -> None:
    match = detect_pii_by_name(name)
    assert match is not None and match.kind == kind and repr(name) in match.reason


@pytest.mark.parametrize("name", [
    "surname_count", "n_names", "filename", "hostname", "drug_name", "hospital_name", "product_name", "name_of_drug",
    "nombre_producto", "company_name", "ip_address", "phone_type", "card_type", "birth_weight", "market_cap",
    "mail_date", "mobile_app", "patient_id", "age", "income",
])
def test_column_names_that_name_no_pii(name: str) -> None:
    assert detect_pii_by_name(name) is None


@pytest.mark.parametrize(("name", "key"), [
    ("subject_id", True), ("PatientID", True), ("patientid", True), ("userId", True), ("ID", True), ("mrn", True),
    ("medical_record_number", True), ("id_paciente", True), ("key", True),
    ("paid", False), ("covid", False), ("valid", False), ("android", False), ("id_type", False), ("grid", False),
])
def test_key_names(name: str, key: bool) -> None:
    assert is_key_name(name) is key


def test_rare_names_in_a_name_titled_column_are_pii_however_few() -> None:
    rng = np.random.default_rng(3)
    surnames = [f"Qx{syllable}vandt" for syllable in ("ab", "or", "ik", "um", "el")]  # in no dictionary
    values = pd.Series(rng.choice(surnames, 15_000))
    match = detect_pii("PATIENT_LAST_NAME", values)
    assert match is not None and match.kind == "last_name" and "however few" in match.reason
    assert detect_pii("col_a", values) is None  # without the name, five repeated words are a category


def test_the_values_must_bear_out_a_crisp_name() -> None:
    flags = pd.Series(["yes", "no"] * 200)
    assert detect_pii("email", flags) is None  # consent to e-mail, not an address
    assert detect_pii("zip", pd.Series(np.arange(10_000, 10_400))).kind == "postcode"
    assert detect_pii("zip", pd.Series(np.linspace(0.5, 9.5, 400))) is None
    dates = pd.Series(pd.date_range("1950-01-01", periods=400, freq="37D"))
    assert detect_pii("date_of_birth", dates).kind == "date_of_birth"
    assert detect_pii("admitted", dates) is None


# ---------------------------------------------------------------- fakes that avoid real values

@pytest.mark.parametrize("kind", ["person_name", "first_name", "last_name", "postcode", "date_of_birth"])
def test_fakes_never_equal_a_value_to_avoid(kind: str) -> None:
    common = fake_values(kind, 3_000, np.random.default_rng(1))  # most of what the generator draws
    avoid = frozenset(comparable(pd.Series(common)).dropna())
    fakes = fake_values(kind, 5_000, np.random.default_rng(2), avoid=avoid)
    assert not comparable(pd.Series(fakes)).isin(avoid).any()


def test_fake_last_names_escape_a_table_holding_every_dictionary_name() -> None:
    from tabsynth.pii.words import first_and_last_names

    avoid = frozenset(name.casefold() for name in first_and_last_names()[1])
    fakes = pd.Series(fake_values("last_name", 2_000, np.random.default_rng(0), avoid=avoid))
    assert not comparable(fakes).isin(avoid).any() and fakes.str.contains("-").all()


def test_comparable_spells_each_value_once() -> None:
    names = comparable(pd.Series(["  Smith ", "SMITH", "Mary  Ann", None]))
    assert names.iloc[:3].tolist() == ["smith", "smith", "mary ann"] and pd.isna(names.iloc[3])
    assert list(comparable(pd.Series([123456789.0, 12.5]))) == ["123456789", "12.5"]
    assert list(comparable(pd.Series(pd.to_datetime(["1980-03-04", "1990-12-31"])))) == ["1980-03-04", "1990-12-31"]
