"""The schema facts of a DP release, measured with DP: kind, dtype, nullability, decimals, datetime format.

Without a schema file, what a column is (its kind, its storage type, whether it holds missing values, how
many decimals its numbers carry, how its dates are written) would be read from the private rows, and one row
could decide it: a single NaN makes an integer column float, a single 40.5 gives every age decimals. Here each
row casts one vote per column, for the class of its own value (`value_classes`: missing, true/false, a number
needing k decimals, a date in one of a fixed list of formats, other text). The votes are counted with discrete
Gaussian noise, and the facts are decided from the noisy counts alone (post-processing). One row changes one
count of each column's histogram, so the L2 sensitivity of all the histograms together is √(columns).

Public without measurement: the column names (so PII and key columns recognised by name), and every column the
steward declared in a schema file. `provenance` says where each fact of each column came from.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from statistics import NormalDist

import numpy as np
import pandas as pd

from tabsynth import pii
from tabsynth.privacy.accounting import gaussian_rho, gaussian_sigma, zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource, measure_counts
from tabsynth.privacy.preprocess import Charge
from tabsynth.table.schema import Column, Facts, Schema

FACTS_SHARE = 0.05  # of the ρ that the whole (ε, δ/2) buys, spent on the facts of undeclared columns
# Few classes on purpose: a kind is decided on the sum of its classes' noisy counts, whose noise grows with
# their number. Numbers need 0, 1, 2 or more decimals (more: kept as they come, not rounded).
MAX_DECIMALS = 2
# Text dates tried in this order; a value takes the first format it parses under. Day-first comes before
# month-first: a month-first column still wins by its values with a day above 12 (19 days in 31).
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y", "%m/%d/%Y", "%d/%m/%y",
                "%d.%m.%Y")
DATE_SHAPE = r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
BOOL_WORDS = {"true": True, "false": False}
# A public prior: the words of a yes/no column, as (no, yes), in the spellings tried. A column whose text is (by
# its noisy counts) one of these pairs gets the pair as public categories: no threshold hides its rarer answer.
YES_NO_WORDS = (("no", "yes"), ("No", "Yes"), ("NO", "YES"), ("n", "y"), ("N", "Y"))
CLASSES = ("missing", "boolean", "number 0 or 1", *(f"number with {k} decimals" for k in range(MAX_DECIMALS + 1)),
           "number with more decimals", "typed datetime", *(f"date {fmt}" for fmt in DATE_FORMATS), "text",
           *(f"the words {no} / {yes}" for no, yes in YES_NO_WORDS))
MISSING, BOOLEAN, ZERO_ONE, NUMBER = 0, 1, 2, 3  # NUMBER + k: a number needing k decimals (other than 0 and 1)
MORE_DECIMALS = NUMBER + MAX_DECIMALS + 1
DATETIME = MORE_DECIMALS + 1
DATE = DATETIME + 1
TEXT = CLASSES.index("text")
YES_NO = TEXT + 1  # YES_NO + i: a word of YES_NO_WORDS[i]
CONFIDENCE = 3.0  # a noisy count is taken as non-zero when above this many noise scales
# The classes each kind sums. A kind is compared on the plain sum of its classes' noisy counts (unbiased, unlike
# a max over them) and counts only when that sum, or its largest class with a bar raised for the number of
# classes, clears CONFIDENCE noise scales: a kind with no rows wins by noise alone in about 1 case in 350.
KIND_CLASSES = {"boolean": (BOOLEAN,), "numerical": tuple(range(ZERO_ONE, MORE_DECIMALS + 1)),
                "datetime": (DATETIME, *range(DATE, TEXT)), "categorical": tuple(range(TEXT, len(CLASSES)))}
# When no kind clears its bar (too few rows for the noise), the column is read as categories: every value is
# kept as it is written (a number as that number, text as text) or, if too rare to release, written as missing.
# Reading it as numbers or dates would turn every text value into a missing one, or a number into a date.
UNDECIDED_KIND = "categorical"
UNDECIDED_REASON = ("too few rows to decide this column's kind at this eps (no kind's DP count clears its noise): "
                    "read as categories; declare it in a schema file")
# Missing values and extra decimals are taken as present at a lower bar: a column wrongly made nullable gets a
# few DP-added missing values, while one wrongly made non-nullable has its real missing values filled in.
MISSING_CONFIDENCE = 2.0
ROUNDING_SHARE = 0.01  # values needing more decimals than the column gets may be rounded, up to this share
FEW_ROWS_PER_SIGMA = 30  # below this many rows per noise scale, the facts of a small table are shown as uncertain
DOMAIN_SOURCE = {"numerical": "bounds and bins measured with DP by the model", "datetime":
                 "bounds and bins measured with DP by the model", "categorical": "categories measured with DP by "
                 "the model (noisy counts above a threshold)", "boolean": "public: true and false"}
DP_REASON = "decided from DP counts of the classes of its values (see the manifest's schema facts)"


def value_classes(values: pd.Series) -> np.ndarray:
    """The class (an index into CLASSES) of each value, from that value alone."""
    out = np.full(len(values), TEXT, dtype=np.int64)
    if pd.api.types.is_bool_dtype(values):
        out[:] = BOOLEAN
    elif isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(values):
        out[:] = DATETIME
    elif pd.api.types.is_numeric_dtype(values):
        out[:] = _number_classes(values.to_numpy(float, na_value=np.nan))
    else:
        out[:] = _object_classes(values.reset_index(drop=True))
    out[values.isna().to_numpy()] = MISSING
    return out


def _number_classes(numbers: np.ndarray) -> np.ndarray:
    out = np.full(len(numbers), MORE_DECIMALS, dtype=np.int64)
    todo = np.isfinite(numbers)
    for places in range(MAX_DECIMALS + 1):
        scaled = numbers * 10.0**places
        exact = todo & np.isclose(scaled, np.round(scaled), rtol=1e-9, atol=0)
        out[exact] = NUMBER + places
        todo &= ~exact
    out[(numbers == 0) | (numbers == 1)] = ZERO_ONE
    return out


def _object_classes(values: pd.Series) -> np.ndarray:
    out = np.full(len(values), TEXT, dtype=np.int64)
    typed = values.map(lambda v: 1 if isinstance(v, (bool, np.bool_)) else 2 if isinstance(v, pd.Timestamp)
                       else 0).to_numpy()
    out[typed == 1], out[typed == 2] = BOOLEAN, DATETIME
    text = values.astype(str).str.strip()
    words = text.str.lower().isin(BOOL_WORDS.keys()).to_numpy() & (typed == 0)
    out[words] = BOOLEAN
    rest = (typed == 0) & ~words
    for offset, pair in enumerate(YES_NO_WORDS):
        hits = rest & text.isin(pair).to_numpy()
        out[hits], rest = YES_NO + offset, rest & ~hits
    numbers = pd.to_numeric(text.where(rest), errors="coerce").to_numpy(float)
    is_number = rest & ~np.isnan(numbers)
    out[is_number] = _number_classes(numbers[is_number])
    dates = rest & ~is_number & text.str.contains(DATE_SHAPE, regex=True).to_numpy()
    for offset, fmt in enumerate(DATE_FORMATS):
        if not dates.any():
            break
        parsed = pd.to_datetime(text[dates], format=fmt, errors="coerce").notna().to_numpy()
        hits = np.flatnonzero(dates)[parsed]
        out[hits] = DATE + offset
        dates[hits] = False
    return out


def measured_columns(frame: pd.DataFrame, user: Schema | None) -> list[str]:
    """The columns whose facts must be measured: not declared in the schema file, not PII by name."""
    declared = set(user.names) if user is not None else set()
    return [str(n) for n in frame.columns if n not in declared and _pii_by_name(str(n)) is None]


def dp_schema(frame: pd.DataFrame, user: Schema | None, *, rho: float, noise: RandomSource,
              sensitivity: float = 1.0) -> tuple[Schema, list[Charge], dict]:
    """The schema of `frame` for a DP release: declared columns as declared, PII by name as PII, every other
    column decided from its noisy value classes at a total cost of `rho` (nothing when all are declared).
    Also the charges, and where each column's facts came from."""
    names = measured_columns(frame, user)
    sigma = gaussian_sigma(rho, sensitivity * math.sqrt(len(names))) if names else None
    noisy, charges = {}, []
    for name in names:  # one histogram per column; together they cost `rho`
        counts = np.bincount(value_classes(frame[name]), minlength=len(CLASSES))
        measured = measure_counts(counts, sigma, ("value classes", name), noise)
        noisy[name] = measured.noisy.astype(float)
        cost = gaussian_rho(sigma, sensitivity)
        charges.append(Charge(measured.record() | {"mechanism": "discrete Gaussian", "rho": cost}, cost))
    columns, provenance = [], {}
    for name in map(str, frame.columns):
        column, provenance[name] = _column(name, frame[name], user, noisy.get(name), sigma)
        columns.append(column)
    return Schema(tuple(columns)), charges, provenance


def pay_for_facts(frame: pd.DataFrame, user: Schema | None, budget: Budget, *,
                  substitution: bool = False) -> tuple[Schema, Budget, dict]:
    """The DP schema of `frame` (the rows a DP model will fit), paid from `budget`: FACTS_SHARE of the ρ that
    (ε, δ/2) buys when some column is measured. Returns the schema, the budget with the facts' charges as its
    `prior` (the model composes them), and the manifest's record of where each fact came from.
    `substitution`: `frame` is a fixed-size random sample of the table, so one row added to the table changes
    at most two of its rows (one in, one out); the noise is scaled for that."""
    schema, charges, provenance = dp_schema(frame, user, rho=FACTS_SHARE * zcdp_rho(budget.epsilon, budget.delta / 2),
                                            noise=budget.noise, sensitivity=math.sqrt(2.0) if substitution else 1.0)
    record = {"measured_columns": [c.record["what"][1] for c in charges], "rho": sum(c.rho for c in charges),
              "share": FACTS_SHARE if charges else 0.0, "sigma": charges[0].record["sigma"] if charges else None,
              "columns": provenance,
              "row_count": "never stated: the DP model releases a noisy total, and the synthetic rows number that"}
    return schema, dataclasses.replace(budget, prior=budget.prior + tuple(charges)), record


def few_rows_warning(record: dict | None, noisy_rows: float) -> str | None:
    """A line for the steward when the facts were measured on too few rows for their noise (judged on the DP
    model's noisy row count): kinds, nullability and decimals may then be misjudged; it names the columns whose
    kind no DP count could decide (read as categories)."""
    if not record or not record["measured_columns"]:
        return None
    undecided = [name for name, fact in record["columns"].items() if fact.get("kind_undecided")]
    lines = []
    if noisy_rows < FEW_ROWS_PER_SIGMA * record["sigma"]:
        lines.append(f"schema facts: measured with DP on about {max(noisy_rows, 0):,.0f} rows with noise of about "
                     f"{record['sigma']:,.0f} per count, so a column's kind, missing values or decimals may be "
                     "misjudged; declare them in a schema file (tabsynth inspect, then --schema) to keep them exact "
                     "and free")
    if undecided:
        lines.append(f"schema facts: too few rows to decide the kind of {', '.join(undecided)} at this eps; read as "
                     "categories (values kept as written, rare ones merged into '(other)'); declare "
                     f"{'it' if len(undecided) == 1 else 'them'} in a schema file")
    return "; ".join(lines) or None


def sampled_facts(source, rows: int, user: Schema | None, budget: Budget) -> tuple[Schema, Budget, dict]:
    """pay_for_facts on a fresh uniform random sample of `rows` rows of a table too large for memory (`source`
    answers sample_frame(rows, seed)). The sample's seed is fresh OS entropy whatever --seed says: one row added
    to the table then changes at most two rows of the sample, which the noise covers."""
    return pay_for_facts(source.sample_frame(rows, secrets.randbits(31)), user, budget, substitution=True)


def _column(name: str, values: pd.Series, user: Schema | None, noisy: np.ndarray | None,
            sigma: float | None) -> tuple[Column, dict]:
    if user is not None and name in user.names:
        return user[name], {"facts": "declared in the schema file"}
    match = _pii_by_name(name)
    if match is not None:
        return Column(name=name, kind="pii", dtype="object", reason=f"column name {name!r}: {match.kind}",
                      missing=None, pii=match.kind), {"facts": "public: recognised as PII by its column name"}
    column = decide(name, noisy, sigma, values.dtype)
    words = column.declared.categories
    domain = (f"public: the words {words[0]} and {words[1]} (a yes/no column by its noisy value classes; any other "
              "text is written as missing)") if words else DOMAIN_SOURCE.get(column.kind, "none: not modelled")
    return column, {"facts": "measured with DP (noisy counts of value classes)",
                    "kind_undecided": column.reason == UNDECIDED_REASON, "kind": column.kind,
                    "dtype": column.dtype, "nullable": column.nullable,
                    "decimals": column.decimals, "datetime_format": column.datetime_format, "domain": domain}


def decide(name: str, noisy: np.ndarray, sigma: float, stored: object) -> Column:
    """A column's facts from its noisy class counts (post-processing only; `stored` is used only for the time
    zone of a typed datetime column, which is part of the column's declared storage type, not of its rows).
    Category columns stay nullable: values in categories too rare to release are written as missing. A column
    whose kind no count can decide (`decided_kind`) is read as categories, and its reason says so."""
    kind = decided_kind(noisy, sigma)
    reason = DP_REASON if kind is not None else UNDECIDED_REASON
    kind = kind or UNDECIDED_KIND
    if kind == "numerical" and _is_label(noisy, sigma):
        kind = "boolean"  # numbers 0 and 1 only: a yes/no label, kept as 0/1 in its dtype
    fmt = None
    if kind == "datetime" and noisy[DATE:TEXT].max() > noisy[DATETIME]:
        fmt = DATE_FORMATS[int(np.argmax(noisy[DATE:TEXT]))]
    unreadable = [i for i in range(1, len(CLASSES)) if i not in _usable_classes(kind, fmt)]  # read as missing
    nullable = bool(noisy[MISSING] > MISSING_CONFIDENCE * sigma
                    or noisy[unreadable].sum() > CONFIDENCE * sigma * math.sqrt(len(unreadable)))
    decimals = _decimals(noisy, sigma) if kind == "numerical" else None
    if pii.is_key_name(name):
        kind = "id"
    dtype = _dtype(kind, nullable, 0 if kind == "boolean" and noisy[ZERO_ONE] > noisy[BOOLEAN] else decimals, stored)
    words = yes_no_words(noisy, sigma) if kind == "categorical" else None
    return Column(name=name, kind=kind, dtype=dtype, reason=reason, missing=None, discrete=False,
                  decimals=decimals if kind == "numerical" else None, datetime_format=fmt,
                  nullable=True if kind == "categorical" else bool(nullable), declared=Facts(categories=words))


def decided_kind(noisy: np.ndarray, sigma: float) -> str | None:
    """The kind with the largest noisy row count among those whose count clears CONFIDENCE times its noise
    scale (KIND_CLASSES); None when none does."""
    sums = {kind: float(noisy[list(cells)].sum()) for kind, cells in KIND_CLASSES.items()}
    clear = {kind: sums[kind] for kind, cells in KIND_CLASSES.items() if _clears(noisy[list(cells)], sigma)}
    return max(clear, key=clear.get) if clear else None


def _clears(cells: np.ndarray, sigma: float) -> bool:
    """Whether a kind's classes hold rows beyond noise: their sum clears CONFIDENCE noise scales of the sum, or
    their largest count clears the bar that the largest of as many pure-noise counts passes as rarely (a kind
    whose rows are nearly all of one class, as a yes/no or integer column, needs ~√k times fewer rows so)."""
    tail = NormalDist().cdf(-CONFIDENCE)
    return bool(cells.sum() > CONFIDENCE * sigma * math.sqrt(len(cells))
                or cells.max() > sigma * NormalDist().inv_cdf(1.0 - tail / len(cells)))


def yes_no_words(noisy: np.ndarray, sigma: float) -> tuple[str, str] | None:
    """The (no, yes) words of a text column whose values are, by their noisy counts, nearly all one spelling of
    YES_NO_WORDS: its other text (held as missing) is within a small share of them or two of its noise scales."""
    words = noisy[YES_NO:]
    best = int(np.argmax(words))
    others = noisy[TEXT:].sum() - words[best]
    spread = MISSING_CONFIDENCE * sigma * math.sqrt(len(words))
    if words[best] <= CONFIDENCE * sigma or others > max(ROUNDING_SHARE * words[best], spread):
        return None
    return YES_NO_WORDS[best]


def _is_label(noisy: np.ndarray, sigma: float) -> bool:
    """Nearly every number is 0 or 1: the other numbers' noisy count, even raised by two of its noise scales,
    stays within a small share of the 0s and 1s."""
    others = noisy[NUMBER:MORE_DECIMALS + 1]
    spread = 2.0 * sigma * math.sqrt(len(others))
    return noisy[ZERO_ONE] > CONFIDENCE * sigma and others.sum() + spread <= ROUNDING_SHARE * noisy[ZERO_ONE]


def _usable_classes(kind: str, fmt: str | None) -> set[int]:
    if kind == "boolean":
        return {BOOLEAN, ZERO_ONE}
    if kind == "numerical":
        return set(range(ZERO_ONE, MORE_DECIMALS + 1))
    if kind == "datetime":
        return {DATE + DATE_FORMATS.index(fmt)} if fmt else {DATETIME}
    return set(range(1, len(CLASSES)))  # categories: any present value


def _decimals(noisy: np.ndarray, sigma: float) -> int | None:
    """The fewest decimals that leave at most a small share of the numbers (by their noisy counts) rounded, or
    no more than two noise scales of their count."""
    numbers = np.append(noisy[ZERO_ONE] + noisy[NUMBER], noisy[NUMBER + 1:MORE_DECIMALS + 1])
    total = max(numbers.sum(), 0.0)
    for places in range(MAX_DECIMALS + 1):
        beyond = numbers[places + 1:]
        if beyond.sum() <= max(ROUNDING_SHARE * total, MISSING_CONFIDENCE * sigma * math.sqrt(len(beyond))):
            return places
    return None


def _dtype(kind: str, nullable: bool, decimals: int | None, stored: object) -> str:
    if kind in ("numerical", "id", "boolean") and decimals == 0:
        return "Int64" if nullable else "int64"
    if kind == "numerical":
        return "float64"
    if kind == "boolean":
        return "boolean" if nullable else "bool"
    if kind == "datetime":
        return str(stored) if isinstance(stored, pd.DatetimeTZDtype) else "datetime64[ns]"
    return "object"


def conform_values(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The rows as the DP schema reads them, value by value: numbers from text, true/false words as booleans;
    what does not read as the column's kind becomes missing. (Dates are parsed by `infer.conform`.)"""
    out = frame.copy()
    for column in schema.columns:
        values = out[column.name]
        if column.kind == "numerical" and not pd.api.types.is_numeric_dtype(values):
            out[column.name] = pd.to_numeric(values.astype(str).str.strip().where(values.notna()), errors="coerce")
        elif column.kind == "boolean" and not pd.api.types.is_bool_dtype(values):
            out[column.name] = values.map(_as_bool).astype("boolean")  # nullable: a few missing may remain
    return out


def _as_bool(value):
    """True/False from a boolean, a true/false word, or the number 1/0; missing otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if pd.isna(value):
        return None
    text = str(value).strip().lower()
    number = pd.to_numeric(text, errors="coerce")
    return BOOL_WORDS.get(text, bool(number) if number in (0, 1) else None)


def _pii_by_name(name: str):
    """PII by the column's name alone (public); free text is left to the category thresholds, which release no
    rare value, so a 'notes' column of a few common words is still modelled."""
    match = pii.detect_pii_by_name(name)
    return None if match is None or match.kind == "free_text" else match
