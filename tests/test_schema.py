import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import SchemaError
from tabsynth.io.files import read_table
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Facts, Schema


def test_adult_kinds_and_facts(adult):
    schema = infer_schema(adult)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds["age"] == kinds["fnlwgt"] == kinds["capital-gain"] == "numerical"
    assert kinds["workclass"] == kinds["income"] == kinds["native-country"] == "categorical"
    assert not [c for c in schema.columns if c.kind in ("pii", "id")]
    assert schema["education-num"].discrete and not schema["age"].discrete
    assert schema["age"].decimals == 0 and schema["age"].dtype == "int64"
    assert schema["age"].observed.min == adult["age"].min() and schema["age"].declared.is_empty()
    assert schema["workclass"].missing == pytest.approx(adult["workclass"].isna().mean(), abs=1e-6)
    assert set(schema["income"].observed.categories) == {"<=50K", ">50K"}
    assert all(c.reason for c in schema.columns)


def test_pii_ids_and_dates_are_flagged_with_reasons(people):
    schema = infer_schema(read_table(people))
    assert schema["patient_id"].kind == "id"
    expected = {"name": "person_name", "email": "email", "phone": "phone", "ssn": "national_id",
                "address": "street_address"}
    for name, kind in expected.items():
        assert (schema[name].kind, schema[name].pii) == ("pii", kind), name
        assert schema[name].reason
    assert schema["age"].kind == schema["weight_kg"].kind == "numerical"
    assert schema["weight_kg"].decimals == 1
    assert schema["ward"].kind == "categorical"
    assert schema["admitted"].kind == "datetime" and schema["admitted"].datetime_format == "%Y-%m-%d %H:%M"


def test_kinds_of_small_frames():
    frame = pd.DataFrame({
        "flag": [True, False, None, True],
        "stamp": pd.to_datetime(["2021-01-01T10:00:00+01:00"] * 4),
        "ratio": [0.5, 1.25, np.nan, 2.0],
        "code": [1, 2, 3, 4],
        "empty": [np.nan] * 4,
    })
    schema = infer_schema(frame)
    assert schema["flag"].kind == "boolean"
    assert schema["stamp"].kind == "datetime" and "+01:00" in schema["stamp"].observed.min
    assert schema["ratio"].decimals == 2 and schema["ratio"].missing == 0.25
    assert schema["code"].kind == "id"  # consecutive unique integers
    assert schema["empty"].missing == 1.0


def test_timezone_aware_strings_stay_aware():
    frame = pd.DataFrame({"seen": ["2024-03-01 10:00:00+02:00", "2024-03-02 11:30:00+02:00"] * 10})
    schema = infer_schema(frame)
    parsed = conform(frame, schema)["seen"]
    assert schema["seen"].kind == "datetime" and parsed.dt.tz is not None


def test_yaml_round_trip(tmp_path, adult):
    schema = infer_schema(adult)
    schema.save(tmp_path / "schema.yaml")
    assert Schema.load(tmp_path / "schema.yaml") == schema


def test_edited_yaml_overrides_inference(tmp_path, adult):
    path = tmp_path / "schema.yaml"
    infer_schema(adult).save(path)
    text = path.read_text().replace(
        "kind: categorical\n  dtype: object\n  reason: text with 2 distinct values",
        "kind: pii\n  pii: person_name\n  handling: drop\n  dtype: object\n  reason: edited", 1)
    text = text.replace("name: age\n  kind: numerical", "name: age\n  declared: {min: 0, max: 120}\n  kind: numerical")
    path.write_text(text)
    schema = infer_schema(adult, user=Schema.load(path))
    sex = schema["sex"]
    assert (sex.kind, sex.handling) == ("pii", "drop")
    assert schema["age"].declared.max == 120 and schema["age"].bounds().max == 120
    assert schema["age"].observed.max == adult["age"].max()


@pytest.mark.parametrize("text, fragment", [
    ("columns: [{name: a, kind: colour, dtype: int64}]", "column 'a': kind"),
    ("columns: [{name: a, kind: numerical, dtype: int64, shoe_size: 3}]", "shoe_size"),
    ("columns: [{name: a, kind: numerical, dtype: x}, {name: a, kind: numerical, dtype: x}]", "duplicate"),
    ("columns: [oops", "not valid YAML"),
])
def test_bad_schema_files_say_what_is_wrong(tmp_path, text, fragment):
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError) as info:
        Schema.load(path)
    assert fragment in str(info.value)


def test_schema_naming_a_missing_column_is_refused(adult):
    schema = Schema.from_dict({"columns": [{"name": "nope", "kind": "numerical", "dtype": "int64"}]})
    with pytest.raises(SchemaError, match="'nope' is in the schema file but not in the table"):
        infer_schema(adult, user=schema)


def test_public_schema_has_no_observed_facts(adult):
    public = infer_schema(adult).public()
    assert all("observed" not in c for c in public["columns"])


def test_mostly_unique_text_is_not_modelled_as_categories():
    values = [f"visit note {i}" for i in range(90)] + ["visit note 1"] * 10
    frame = pd.DataFrame({"label": values, "record_key": [float(i) if i % 7 else np.nan for i in range(100)]})
    schema = infer_schema(frame)
    assert schema["label"].kind == "id" and "mostly unique" in schema["label"].reason
    assert schema["record_key"].kind == "id" and "every present value is unique" in schema["record_key"].reason


def test_parquet_date_columns_are_dates_not_categories(tmp_path):
    import datetime as dt

    import pandas as pd

    path = tmp_path / "born.parquet"
    born = [dt.date(1950 + i % 30, 1 + i % 12, 1 + i % 28) for i in range(300)]
    pd.DataFrame({"born": born[:-1] + [None], "label": ["a", "b", "c"] * 100}).to_parquet(path)
    frame = read_table(path)
    assert str(frame["born"].dtype) == "datetime64[ns]" and frame["born"].isna().sum() == 1
    schema = infer_schema(frame)
    assert schema["born"].kind == "datetime" and schema["label"].kind == "categorical"


def test_two_valued_numbers_are_labels_not_measurements():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"is_fraud": rng.integers(0, 2, 300), "grade": rng.integers(1, 3, 300),
                          "score": rng.integers(0, 2, 300).astype(float)})
    frame.loc[0, "score"] = np.nan
    schema = infer_schema(frame)
    assert schema["is_fraud"].kind == schema["score"].kind == "boolean"
    assert schema["grade"].kind == "categorical" and schema["grade"].observed.categories in ((1, 2), (2, 1))


def test_day_first_dates_are_dates(recwarn):
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.tile(np.arange(0, 700, 3), 2), unit="D")  # repeats
    frame = pd.DataFrame({"short": days.strftime("%d/%m/%y"), "long": days.strftime("%d/%m/%Y"),
                          "dotted": days.strftime("%d.%m.%Y"), "us": days.strftime("%m/%d/%Y")})
    frame.loc[0, ["short", "long"]] = ["03/04/24", "03/04/2024"]  # the first value alone reads either way
    schema = infer_schema(frame)
    formats = {c.name: (c.kind, c.datetime_format) for c in schema.columns}
    assert formats == {"short": ("datetime", "%d/%m/%y"), "long": ("datetime", "%d/%m/%Y"),
                       "dotted": ("datetime", "%d.%m.%Y"), "us": ("datetime", "%m/%d/%Y")}
    assert conform(frame, schema)["short"].iloc[1] == days[1]
    frame.loc[0, "long"] = "18/03/2024"  # pandas warns when it guesses day first
    assert infer_schema(frame)["long"].datetime_format == "%d/%m/%Y"
    assert not [w for w in recwarn if "pandas" in w.filename or "tabsynth" in w.filename], [str(w) for w in recwarn]


def test_an_edited_kind_without_dtype_gets_its_kinds_default(tmp_path, adult):
    path = tmp_path / "schema.yaml"
    infer_schema(adult).save(path)
    text = path.read_text().replace("name: education-num\n  kind: numerical\n  dtype: int64",
                                    "name: education-num\n  kind: categorical", 1)
    assert text != path.read_text()
    path.write_text(text)
    schema = infer_schema(adult, user=Schema.load(path))
    assert (schema["education-num"].kind, schema["education-num"].dtype) == ("categorical", "object")
    assert set(schema["education-num"].observed.categories) == set(adult["education-num"])
    assert Schema.from_dict({"columns": [{"name": "a", "kind": "numerical"}]})["a"].dtype == "float64"


def test_a_schema_reads_as_a_table_one_row_per_column(people):
    schema = infer_schema(read_table(people)).replace("age", declared=Facts(min=0, max=120))
    frame = schema.to_frame()
    assert list(frame["name"]) == schema.names
    assert list(frame.columns) == ["name", "kind", "dtype", "pii", "handling", "missing", "declared", "reason"]
    email = frame.set_index("name").loc["email"]
    assert (email["kind"], email["pii"], email["handling"]) == ("pii", "email", "fake")
    assert frame.set_index("name").loc["age", "declared"] == "min 0, max 120"
    lines = str(schema).splitlines()
    assert len(lines) == 1 + len(schema.columns) and lines[0].split()[:3] == ["name", "kind", "dtype"]
    assert schema["email"].reason in str(schema) and "<td>min 0, max 120</td>" in schema._repr_html_()
    assert Schema.from_dict(schema.to_dict()) == schema  # display only: equality and the YAML form are unchanged
    assert "withheld" in str(Schema.from_dict(schema.public()))
