import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import InputError
from tabsynth.metrics.constraints import check_constraints
from tabsynth.metrics.expectations import MAX_GX_RULES, build_suite, gx_outcomes, pandas_outcome
from tabsynth.models.base import create_model
from tabsynth.rules.constraints import (
    CombinationConstraint,
    CombinationSpec,
    RangeConstraint,
    RangeSpec,
    compile_rules,
    load_constraints,
    valid_rows,
)
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Column, Facts, Schema
from tabsynth.testing import contract_table

CONSTRAINTS = """\
constraints:
  - check: "admitted <= discharged"
  - range: {column: age, min: 0, max: 120}
  - regex: {column: zip, pattern: '^[0-9]{5}$'}
  - combination: {columns: [city, region]}
"""


@pytest.fixture(scope="module")
def real():
    rng = np.random.default_rng(3)
    n = 300
    admitted = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D")
    city = rng.choice(["Paris", "Lyon", "Nice", "Marseille"], n, p=[0.4, 0.3, 0.29, 0.01])
    return pd.DataFrame({
        "patient_id": [f"P{i:05d}" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "admitted": admitted,
        "discharged": admitted + pd.to_timedelta(rng.integers(0, 20, n), "D"),
        "zip": rng.choice(["75001", "69002", "06000", "13001"], n),
        "city": city,
        "region": pd.Series(city).map({"Paris": "IDF", "Lyon": "ARA", "Nice": "PACA", "Marseille": "PACA"}),
    })


@pytest.fixture(scope="module")
def schema(real):
    return infer_schema(real)


@pytest.fixture(scope="module")
def constraints(tmp_path_factory):
    path = tmp_path_factory.mktemp("constraints") / "constraints.yaml"
    path.write_text(CONSTRAINTS)
    return load_constraints(path)


@pytest.fixture(scope="module")
def synthetic(real):
    """A valid synthetic table: the real rows reshuffled per column where that keeps every rule."""
    frame = real[real.city != "Marseille"].sample(frac=1.0, random_state=1).reset_index(drop=True)
    frame["patient_id"] = [f"S{i:05d}" for i in range(len(frame))]
    return frame


@pytest.fixture(scope="module")
def broken(synthetic):
    frame = synthetic.copy()
    frame.loc[[1, 2, 3], "discharged"] = frame.loc[[1, 2, 3], "admitted"] - pd.Timedelta("1D")  # check
    frame.loc[[4, 5], "age"] = 130  # user range and schema bounds
    frame.loc[6, "zip"] = "7500A"  # regex
    frame.loc[7, ["city", "region"]] = ["Lyon", "IDF"]  # unseen combination
    frame.loc[8, "patient_id"] = frame.loc[9, "patient_id"]  # duplicate key (table-level)
    frame.loc[10, "admitted"] = pd.NaT  # missing where the real column has none, and fails the check
    return frame


@pytest.fixture(scope="module")
def broken_table(broken):
    """Also table-level violations: a missing column, changed dtypes (GX checks an object column value by
    value: Python ints are not int64), and the duplicated key."""
    return broken.drop(columns=["zip"]).assign(age=broken.age.astype(object), city=broken.city.astype("category"))


@pytest.fixture(scope="module")
def broken_results(broken, schema, constraints, real):
    return check_constraints(broken, schema, constraints, real=real)


def expectations(results):
    return {e["rule"]: e for e in results[0].details["expectations"]}


def test_a_valid_table_passes_every_expectation(synthetic, schema, constraints, real):
    violations, share = check_constraints(synthetic, schema, constraints, real=real)
    assert (violations.name, violations.value, violations.goal) == ("constraint_violations", 0.0, "min")
    assert all(e["passed"] for e in violations.details["expectations"])
    assert (share.name, share.value) == ("constraint_valid_share", 1.0)
    assert valid_rows(synthetic, schema, constraints, real).all()


def test_a_violating_table_is_caught_with_the_right_counts(broken, broken_results):
    results = broken_results
    found = expectations(results)
    failed = {rule: e.get("unexpected_count") for rule, e in found.items() if not e["passed"]}
    assert failed == {
        "check: admitted <= discharged": 4,
        "admitted <= discharged (as in every real row)": 3,  # learnt from `real`; a missing date passes
        "age: within the constraint's bounds": 2,
        "age: within the schema bounds": 2,
        "zip: matches '^[0-9]{5}$'": 1,
        "city, region: combinations seen in the real table": 1,
        "patient_id: unique values": 2,
        "admitted: no missing values (the real column has none)": 1,
    }  # zip is a postcode (PII): no category rule, only the user's regex
    assert results[0].value == len(failed)
    assert results[1].value == pytest.approx(1 - 8 / len(broken))  # rows 1-7 and 10; row 8 is table-level
    check = found["check: admitted <= discharged"]
    assert {"admitted": "2021-01-01T00:00:00"}.keys() <= check["unexpected_examples"][0].keys()
    assert found["zip: matches '^[0-9]{5}$'"]["unexpected_examples"] == ["7500A"]


def gx_agreeing_with_pandas(frame, rules):
    """GX's outcome of each rule, by label, once checked that pandas finds the same."""
    by_gx = dict(zip([rule.label() for rule in rules], gx_outcomes(frame, rules), strict=True))
    by_pandas = {rule.label(): pandas_outcome(frame, rule) for rule in rules}
    assert without_messages(by_pandas) == without_messages(by_gx)
    return by_gx


def without_messages(outcomes):
    """Outcomes whose errors, if any, read the same: GX words them its own way."""
    return {label: dataclasses.replace(outcome, error=outcome.error and "error") for label, outcome in outcomes.items()}


@pytest.mark.parametrize("table, table_failures", [
    ("broken", {"patient_id: unique values"}),
    ("broken_table", {"patient_id: unique values", "zip: present", "age: dtype int64", "city: dtype object"}),
])
def test_pandas_checks_agree_with_gx(request, table, table_failures, schema, constraints, real):
    frame = request.getfixturevalue(table)
    by_gx = gx_agreeing_with_pandas(frame, compile_rules(schema, constraints, real))
    assert table_failures <= {label for label, outcome in by_gx.items() if not outcome.passed}
    share = check_constraints(frame, schema, constraints, real=real)[1].value
    assert share == valid_rows(frame, schema, constraints, real).mean() < 1


def test_pandas_checks_agree_with_gx_on_every_kind_of_column():
    raw = contract_table()  # zoned datetimes, missing values, booleans, categories
    schema = infer_schema(raw)
    table = conform(raw, schema)
    frame = table.assign(smoker=table.smoker.map({True: "yes", False: "no"}), grade=table.grade.astype("category"),
                         visits=table.visits + 9)
    by_gx = gx_agreeing_with_pandas(frame, compile_rules(schema, []))
    smoker = by_gx["smoker: dtype bool"]  # an object column: GX checks its values one by one
    assert (smoker.passed, smoker.unexpected_count) == (False, len(frame))
    grade = by_gx["grade: dtype object"]
    assert (grade.passed, grade.observed) == (False, "CategoricalDtypeType")
    assert not by_gx["visits: within the schema bounds"].passed
    assert by_gx["admitted: dtype datetime64[ns, Europe/Paris]"].passed


@pytest.mark.slow
def test_user_constraints_go_to_gx_up_to_its_cap_and_the_schema_facts_to_pandas():
    columns = 2000
    real = pd.DataFrame(np.random.default_rng(5).normal(size=(60, columns)), columns=[f"x{i}" for i in range(columns)])
    schema = Schema(tuple(Column(name, "numerical", "float64", observed=Facts(min=values.min(), max=values.max()))
                          for name, values in real.items()))  # as inferred, without the wait
    synthetic = real.sample(frac=1.0, random_state=1).reset_index(drop=True)
    synthetic.loc[[3, 4], "x1999"] = [1e6, np.nan]
    loose = [RangeConstraint(range=RangeSpec(column=f"x{i}", min=-100)) for i in range(MAX_GX_RULES)]
    tight = RangeConstraint(range=RangeSpec(column="x1999", max=100))
    for user, by in (([tight, *loose], "great_expectations"), ([*loose, tight], "pandas")):  # the cap's both sides
        violations, share = check_constraints(synthetic, schema, user)
        rules = compile_rules(schema, user)
        expectations = violations.details["expectations"]
        assert [e["rule"] for e in expectations] == [rule.label() for rule in rules]
        assert len(rules) == 4 * columns + MAX_GX_RULES + 1 and all(isinstance(e["passed"], bool) for e in expectations)
        checked_with = violations.details["checked_with"]
        assert (checked_with["great_expectations"], checked_with["pandas"]) == (MAX_GX_RULES, 4 * columns + 1)
        assert "15 ms" in checked_with["why"]
        failed = {e["rule"]: e for e in expectations if not e["passed"]}
        assert {rule: (e["checked_by"], e["unexpected_count"]) for rule, e in failed.items()} == {
            "x1999: within the constraint's bounds": (by, 1),
            "x1999: within the schema bounds": ("pandas", 1),
            "x1999: no missing values (the real column has none)": ("pandas", 1),
        }
        assert failed["x1999: within the schema bounds"]["unexpected_examples"] == [1e6]
        assert share.value == 58 / 60


def test_a_table_without_constraints_never_starts_gx(synthetic, schema, real):
    found = check_constraints(synthetic, schema, [], real=real)[0].details
    assert found["checked_with"]["great_expectations"] == 0
    assert {e["checked_by"] for e in found["expectations"]} == {"pandas"}


def test_reports_show_synthetic_values_never_real_ones(broken_results):
    details = json.dumps(broken_results[0].details)
    assert "Marseille" not in details  # a real category absent from the synthetic table
    assert "P00000" not in details  # a real key
    assert "7500A" in details


def test_schema_facts_catch_missing_columns_and_changed_dtypes(synthetic, schema, real):
    frame = synthetic.drop(columns=["zip"]).assign(age=synthetic.age.astype(float),
                                                   admitted=synthetic.admitted + pd.Timedelta("800D"))
    found = expectations(check_constraints(frame, schema, [], real=real))
    assert not found["zip: present"]["passed"]
    assert "does not exist" in found["zip: no missing values (the real column has none)"]["error"]
    assert not found["age: dtype int64"]["passed"] and found["age: dtype int64"]["observed"] == "float64"
    assert found["admitted: within the schema bounds"]["unexpected_count"] > 0


def test_declared_combinations_need_no_real_table(synthetic, schema, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("constraints:\n  - combination: {columns: [city, region], allowed: [[Paris, IDF], [Lyon, ARA]]}\n")
    constraints = load_constraints(path)
    assert valid_rows(synthetic, schema, constraints).tolist() == synthetic.city.isin(["Paris", "Lyon"]).tolist()
    learnt = CombinationConstraint(combination=CombinationSpec(columns=("city", "region")))
    with pytest.raises(InputError, match="list the allowed combinations or give the real table"):
        valid_rows(synthetic, schema, [learnt])


def test_gx_runs_in_memory_quietly(synthetic, schema, constraints, real, tmp_path, monkeypatch, capfd, caplog):
    monkeypatch.chdir(tmp_path)
    suite = build_suite(schema, constraints, real)
    assert len(suite.expectations) == len(compile_rules(schema, constraints, real))
    check_constraints(synthetic, schema, constraints, real=real)
    assert list(tmp_path.iterdir()) == []
    out, err = capfd.readouterr()
    assert "Calculating Metrics" not in out + err
    assert not [r for r in caplog.records if r.name.startswith("great_expectations")]


@pytest.mark.parametrize("text, problem", [
    ("constraints:\n  - between: {column: age}\n", "constraint #1: each constraint is one of: check, range, regex"),
    ("constraints:\n  - range: {column: age, low: 0}\n", "constraint #1 (range): low: Extra inputs are not permitted"),
    ("constraints:\n  - check: ok\n  - regex: {column: zip, pattern: '(['}\n", "constraint #2 (regex): pattern: "),
    ("constraints:\n  - combination: {columns: [city]}\n", "constraint #1 (combination): columns: "),
])
def test_bad_constraint_files_name_the_constraint(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_constraints(path)
    assert any(line.startswith(f"constraints file bad.yaml: {problem}") for line in caught.value.problems)


def test_constraints_are_checked_against_the_schema(synthetic, schema, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("constraints:\n  - range: {column: age, max: 120}\n  - check: \"agee > 1\"\n")
    with pytest.raises(InputError, match=r"constraint #2: condition 'agee > 1': unknown column 'agee'"):
        valid_rows(synthetic, schema, load_constraints(path))


def test_a_model_sample_meets_the_schema_facts():
    raw = contract_table()  # zoned datetimes, missing values, booleans, categories
    schema = infer_schema(raw)
    model = create_model("copula").fit(conform(raw, schema), schema, rng=0)
    violations, share = check_constraints(model.sample(200, rng=1), schema, [])
    assert violations.value == 0, [e for e in violations.details["expectations"] if not e["passed"]]
    assert share.value == 1.0
    late = model.sample(50, rng=2).assign(admitted=pd.Timestamp("2030-01-01", tz="Europe/Paris"))
    assert not valid_rows(late, schema, []).any()


def test_range_bounds_must_fit_the_column(synthetic, schema, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("constraints:\n"
                    "  - range: {column: age, min: young}\n"
                    "  - range: {column: admitted, min: 2021-02-01}\n")
    with pytest.raises(InputError, match=r"constraint #1: column 'age': the bound 'young' is not a number"):
        valid_rows(synthetic, schema, load_constraints(path))
    dates = load_constraints(path)[1:]  # an unquoted YAML date is a date
    assert valid_rows(synthetic, schema, dates).tolist() == (synthetic.admitted >= "2021-02-01").tolist()


def test_nullable_pandas_dtypes_match_themselves():
    """A table read from Parquet keeps Int64, boolean, string and category: checked against its own schema,
    it must pass (GX names none of these types; they are mapped to the scalar types GX finds in them)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": pd.array([*rng.integers(0, 9, 199), None], dtype="Int64"),
                          "b": pd.array([True, False, None, True] * 50, dtype="boolean"),
                          "c": pd.Series(rng.choice(list("xyz"), 200)).astype("string"),
                          "d": pd.Series(rng.choice(list("xyz"), 200)).astype("category")})
    schema = infer_schema(frame)
    same = check_constraints(conform(frame, schema), schema, [], real=frame)[0]
    changed_frame = frame.assign(a=frame["a"].astype("float64"))
    changed = check_constraints(changed_frame, schema, [], real=frame)[0]
    assert same.value == 0, [e["rule"] for e in same.details["expectations"] if not e["passed"]]
    assert [e["rule"] for e in changed.details["expectations"] if not e["passed"]] == ["a: dtype Int64"]
    for table in (conform(frame, schema), changed_frame):  # GX finds the same
        gx_agreeing_with_pandas(table, compile_rules(schema, [], frame))
