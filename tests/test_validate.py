import numpy as np
import pandas as pd
import pytest

from tabsynth.metrics.fidelity import column_distances
from tabsynth.metrics.risk import copy_rate, exact_copies
from tabsynth.table.distances import tvd
from tabsynth.table.infer import infer_schema


def test_tvd_known_values():
    assert tvd(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == 0
    assert tvd(np.array([0, 0]), np.array([1, 1])) == pytest.approx(1)
    assert tvd(np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1])) == pytest.approx(0.5)
    assert tvd(np.array([3, 3, 7]), np.array([5])) == pytest.approx(1)


def test_column_distances_see_a_shifted_column():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(list("abc"), 2000)})
    schema = infer_schema(real)
    same = column_distances(real, real.sample(frac=1, random_state=1), schema)
    shifted = column_distances(real, real.assign(x=real["x"] + 3), schema)
    values = lambda results: {m.name: m.value for m in results}  # noqa: E731
    assert values(same)["tvd:x"] == 0 and values(same)["mean_pair_tvd"] == 0
    assert values(shifted)["tvd:x"] > 0.5 and values(shifted)["tvd:c"] == 0


def test_exact_copies_against_the_holdout_baseline():
    train = pd.DataFrame({"a": [10, 20, 30, 45], "b": ["x", None, "z", "w"]})
    holdout = pd.DataFrame({"a": [10, 90], "b": ["x", "y"]})
    synthetic = pd.DataFrame({"a": [20, 50, 30, 30], "b": [None, "q", "z", "no"]})
    assert copy_rate(train, synthetic, ["a", "b"]) == 0.5  # missing equals missing
    results = {m.name: m.value for m in exact_copies(train, holdout, synthetic, infer_schema(train))}
    assert results["holdout_copy_rate"] == 0.5 and results["exact_copy_excess"] == 0.0


def test_wide_tables_use_a_bounded_number_of_pairs():
    from tabsynth.table.distances import MAX_PAIRS, column_pairs

    pairs, total = column_pairs([f"c{i}" for i in range(100)])
    assert total == 4950 and len(pairs) == MAX_PAIRS == len(set(pairs))
    assert column_pairs(["a", "b", "c"]) == ([("a", "b"), ("a", "c"), ("b", "c")], 3)


# ---------------------------------------------------------------- pii_leak and `tabsynth validate`

def _pii_schema_tables():
    from tabsynth.table.schema import Column, Schema

    schema = Schema((Column("surname", "pii", "object", pii="last_name"), Column("race", "categorical", "object"),
                     Column("note", "categorical", "object"), Column("code", "id", "object")))
    train = pd.DataFrame({"surname": ["White", "Okonkwo", "Vandermeer", "Li"] * 5,
                          "race": ["White"] * 12 + ["Black"] * 8, "note": ["a"] * 20, "code": ["Li"] * 20})
    holdout = pd.DataFrame({"surname": ["Zyskowski"], "race": ["White"], "note": ["a"], "code": ["x"]})
    return schema, train, holdout


def test_pii_leak_counts_real_values_in_pii_columns_and_anywhere_else():
    from tabsynth.metrics.pii_leak import leak_lines, pii_leak

    schema, train, holdout = _pii_schema_tables()
    synthetic = pd.DataFrame({
        "surname": ["OKONKWO ", "zyskowski", "Smith", None],  # a holdout name counts too; case and spaces aside
        "race": ["White", "White", "Black", "Vandermeer"],  # 'White' is a race category here, 'Vandermeer' a copy
        "note": ["a", "Li", "a", "a"],  # too short to tell a copy from chance
        "code": ["Okonkwo"] * 4,  # keys are not compared
    })
    [metric] = pii_leak(train, holdout, synthetic, schema)
    assert metric.value == 3 and metric.reads_private_rows
    assert metric.details["pii_columns"] == {"surname": 2} and metric.details["other_columns"] == {"race": 1}
    assert leak_lines(metric) == ["PII column 'surname': 2 synthetic values equal a real value of the column",
                                  "column 'race': 1 synthetic value equals a real value of a PII column"]
    clean = synthetic.assign(surname=["Smith"] * 4, race=["White"] * 4)
    assert pii_leak(train, holdout, clean, schema)[0].value == 0
    dropped = pii_leak(train, holdout, clean.drop(columns="surname"), schema)[0]
    assert dropped.value == 0 and dropped.details["pii_columns_absent_from_synthetic"] == ["surname"]


@pytest.fixture(scope="module")
def own_release(tmp_path_factory):
    """tabsynth's own passing release of a table with PII and key columns."""
    from tabsynth.run.options import ReleaseOptions
    from tabsynth.run.release import release

    folder = tmp_path_factory.mktemp("own")
    people = _people_csv(folder)
    result = release(ReleaseOptions(data=people, out=folder / "rel", seed=3))
    assert result.verdict.passed
    return people, folder / "rel" / "synthetic.parquet"


def _people_csv(folder):
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(11)
    rng = np.random.default_rng(11)
    n = 300
    frame = pd.DataFrame({
        "patient_id": [f"P{100000 + i}" for i in range(n)], "name": [fake.name() for _ in range(n)],
        "email": [fake.email() for _ in range(n)], "ssn": [fake.ssn() for _ in range(n)],
        "age": rng.integers(18, 95, n), "weight_kg": np.round(rng.normal(75, 12, n), 2),
        "ward": rng.choice(["cardiology", "oncology", "icu"], n),
    })
    frame.to_csv(folder / "people.csv", index=False)
    return folder / "people.csv"


def test_validate_passes_tabsynths_own_release_and_says_what_it_checked(own_release):
    from tabsynth.run.options import ValidateOptions
    from tabsynth.run.validate import validate_tables

    real, synthetic = own_release
    verdict, manifest = validate_tables(ValidateOptions(real=real, synthetic=synthetic))
    assert verdict.passed
    assert {r.metric for r in verdict.rules} >= {"constraint_violations", "pii_leak"}
    checked = manifest["checked"]
    assert set(checked["pii_columns"]) == {"name", "email", "ssn"} and checked["key_columns"] == ["patient_id"]
    assert all("pii_leak" in line for line in checked["pii_columns"].values())


def test_validate_blocks_real_values_and_names_every_failure(own_release, tmp_path):
    from tabsynth.errors import ReleaseBlocked
    from tabsynth.run.options import ValidateOptions
    from tabsynth.run.validate import validate_tables

    real, synthetic = own_release
    leaky = pd.read_parquet(synthetic)
    leaky["name"] = pd.read_csv(real)["name"].to_numpy()[: len(leaky)]  # real names copied in
    leaky.loc[:2, "ward"] = "surgery"  # not a real category: a named constraint fails on 3 rows
    leaky.drop(columns=["email"]).to_parquet(tmp_path / "leaky.parquet")  # a dropped PII column is fine
    report = tmp_path / "validation.html"
    with pytest.raises(ReleaseBlocked) as blocked:
        validate_tables(ValidateOptions(real=real, synthetic=tmp_path / "leaky.parquet", report=report))
    text = "\n".join(blocked.value.problems)
    assert "pii_leak" in text and f"PII column 'name': {len(leaky)} synthetic values equal" in text
    assert "constraint ward: values among the schema categories: 3 rows fail" in text
    assert "email" not in text
    html = report.read_text()  # titled as what it is, every failure itemised in the report too
    assert "<h1>tabsynth validation report</h1>" in html and "release report" not in html and ">FAILED<" in html
    failed = html[html.find("<h2>What failed"):html.find("<h2>Privacy summary")]
    assert f"PII column &#39;name&#39;: {len(leaky)} synthetic values equal" in failed
    assert "constraint ward: values among the schema categories: 3 rows fail" in failed
    assert "made elsewhere, was checked against the real table" in html and "RELEASED" not in html
