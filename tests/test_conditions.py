import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import InputError
from tabsynth.rules.conditions import And, Compare, IsNull, Membership, Or, parse_value
from tabsynth.rules.parser import parse_condition
from tabsynth.table.infer import conform, infer_schema
from tabsynth.testing import contract_table


@pytest.fixture(scope="module")
def table():
    raw = contract_table()
    schema = infer_schema(raw)
    return conform(raw, schema), schema


def mask(text, table):
    frame, schema = table
    return parse_condition(text, schema).mask(frame)


def test_comparisons_select_the_rows_pandas_selects(table):
    frame, _ = table
    assert np.array_equal(mask("age >= 65 and grade == 'A'", table), ((frame.age >= 65) & (frame.grade == "A")).values)
    assert np.array_equal(mask("65 < age", table), (frame.age > 65).values)
    assert np.array_equal(mask("grade in ['A', 'C'] or smoker == true", table),
                          (frame.grade.isin(["A", "C"]) | frame.smoker).values)
    assert np.array_equal(mask("visits <= age", table), (frame.visits <= frame.age).values)


def test_missing_values_satisfy_no_comparison(table):
    frame, _ = table
    assert frame.income.isna().any() and frame.grade.isna().any()
    assert not mask("income != 1", table)[frame.income.isna().values].any()
    assert not mask("grade not in ['A']", table)[frame.grade.isna().values].any()
    assert np.array_equal(mask("income is null", table), frame.income.isna().values)
    assert np.array_equal(mask("grade is not null", table), frame.grade.notna().values)


def test_dates_compare_with_iso_strings_in_the_column_zone(table):
    frame, _ = table
    cut = pd.Timestamp("2021-06-01", tz="Europe/Paris")
    assert np.array_equal(mask("admitted >= '2021-06-01'", table), (frame.admitted >= cut).values)
    assert np.array_equal(mask("admitted < '2021-06-01T00:00:00+02:00'", table), (frame.admitted < cut).values)


def test_condition_tree_columns_and_fixed_values(table):
    condition = parse_condition("grade == 'A' and (age > 30 or income is null) and smoker in [true]", table[1])
    assert condition == And((Compare("grade", "==", "A"), Or((Compare("age", ">", 30), IsNull("income"))),
                             Membership("smoker", (True,))))
    assert condition.columns == ("grade", "age", "income", "smoker")
    assert condition.fixed_values() == {"grade": "A", "smoker": True}
    assert parse_condition("age == 40 or grade == 'A'", table[1]).fixed_values() == {}


@pytest.mark.parametrize("text", [
    "age >= 65 and grade == 'A'",
    "income is null or smoker == true and visits not in [1, 2]",
    "(age < 30 or age > 60) and grade != 'B'",
    "admitted >= '2021-06-01' AND visits = 2",
])
def test_canonical_text_parses_back_to_the_same_condition(table, text):
    condition = parse_condition(text, table[1])
    assert parse_condition(condition.text, table[1]) == condition


def test_names_with_hyphens_spaces_and_keywords():
    frame = pd.DataFrame({"capital-gain": [0, 5, 9], "hours per week": [40, 50, 60], "in": ["a", "b", "a"]})
    schema = infer_schema(frame)
    condition = parse_condition("capital-gain > 1 and `hours per week` < 60 and `in` == 'b'", schema)
    assert condition.mask(frame).tolist() == [False, True, False]
    assert condition.text == "capital-gain > 1 and `hours per week` < 60 and `in` == 'b'"


@pytest.mark.parametrize("text, problem", [
    ("__import__('os')", "function calls are not allowed"),
    ("os.system('ls')", "function calls are not allowed"),
    ("age.__class__ == 1", "unknown column 'age.__class__'"),
    ("agee > 3", "unknown column 'agee'; did you mean 'age'?"),
    ("grade == 5", "column 'grade' is categorical"),
    ("grade == 'a'", "'a' is not a category of column 'grade'; did you mean 'A'?"),
    ("grade < 'B'", "only ==, !=, in and not in apply"),
    ("age == 'old'", "column 'age' is numerical"),
    ("smoker == 2", "column 'smoker' is true/false"),
    ("admitted > 'soon'", "compare it with an ISO date"),
    ("age == grade", "cannot compare numerical column 'age' with categorical column 'grade'"),
    ("age == null", "use 'is null'"),
    ("1 < 2", "the comparison holds no column"),
    ("age > 3 and", "the condition ends too early (at position 12)"),
    ("(age > 3", "expected ')'"),
    ("age > 3; drop", "unexpected character ';' (at position 8)"),
    ("lambda: 1", "unexpected character ':'"),
    ("", "the condition is empty"),
])
def test_bad_conditions_are_one_line_input_errors(table, text, problem):
    with pytest.raises(InputError) as caught:
        parse_condition(text, table[1])
    assert len(caught.value.problems) == 1 and problem in caught.value.problems[0]


def test_mask_on_a_table_without_the_column_names_it(table):
    condition = parse_condition("age > 3", table[1])
    with pytest.raises(InputError, match="column 'age' is not in the table"):
        condition.mask(pd.DataFrame({"visits": [1]}))


def test_parse_value_reads_literals_and_keeps_bare_text():
    assert parse_value("'>50K'") == ">50K"
    assert parse_value("0") == 0 and isinstance(parse_value("0"), int)
    assert parse_value("2.5") == 2.5
    assert parse_value("TRUE") is True
    assert parse_value(" Female ") == "Female"


def test_dates_written_as_text_compare_too(table):
    frame, schema = table
    text_dates = frame.assign(admitted=frame.admitted.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    condition = parse_condition("admitted >= '2021-06-01T00:00:00+00:00'", schema)
    assert np.array_equal(condition.mask(text_dates), condition.mask(frame))


def test_a_0_1_label_compares_with_1_and_0(table):
    """Two-valued 0/1 columns are inferred as true/false; `is_fraud == 1` must keep working on them."""
    frame = pd.DataFrame({"is_fraud": [0, 1, 1, 0, 1] * 10})
    schema = infer_schema(frame)
    assert schema["is_fraud"].kind == "boolean"
    ones, trues = (parse_condition(text, schema).mask(frame) for text in ("is_fraud == 1", "is_fraud == true"))
    assert ones.tolist() == trues.tolist() == (frame["is_fraud"] == 1).tolist()
    assert parse_condition("is_fraud != 0", schema).mask(frame).tolist() == ones.tolist()
