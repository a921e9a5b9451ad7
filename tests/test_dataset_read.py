"""Reading a dataset: the dataset YAML written and read back, tables from files and Parquet folders, and the keys a
database declares in its catalogue (SQLite always, PostgreSQL where it runs, and it must run under CI)."""

import uuid

import pandas as pd
import pytest
import sqlalchemy as sa
from test_dataset_infer import patients_and_visits
from test_sql import POSTGRES

from tabsynth.errors import InputError, SchemaError
from tabsynth.io.table_files import folder_tables
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec, read_dataset, read_relations, save_relations
from tabsynth.table.dataset_db import read_database, relations_from_catalogue


def clinic_relations(folder) -> Relations:
    return Relations({
        "patients": TableSpec("patients", str(folder / "patients.csv"), "id"),
        "visits": TableSpec("visits", str(folder / "visits"), "visit_id",
                            (ForeignKey("patient_id", "patients", "id"),), "visit_date", str(folder / "visits.yaml")),
    })


def write_clinic(folder) -> dict[str, pd.DataFrame]:
    frames = patients_and_visits()
    frames["patients"].to_csv(folder / "patients.csv", index=False)
    (folder / "visits").mkdir()
    half = len(frames["visits"]) // 2
    frames["visits"].iloc[:half].to_parquet(folder / "visits" / "part-0.parquet", index=False)
    frames["visits"].iloc[half:].to_parquet(folder / "visits" / "part-1.parquet", index=False)
    return frames


def test_dataset_yaml_round_trip_keeps_every_field(tmp_path):
    relations = clinic_relations(tmp_path)
    written = save_relations(relations, tmp_path / "dataset.yaml")
    text = written.read_text()
    assert "path: patients.csv" in text and "schema: visits.yaml" in text  # relative to the YAML's folder
    assert "references: patients.id" in text
    assert read_relations(written) == relations
    with pytest.raises(InputError, match="already exists"):
        save_relations(relations, written)
    assert not list(tmp_path.glob(".dataset.yaml.*"))  # no staging file left behind


def test_database_paths_are_written_without_their_password(tmp_path):
    relations = Relations({"t": TableSpec("t", "postgresql://ann:s3cret@db.example.org/clinic#public.t", "id")})
    save_relations(relations, tmp_path / "d.yaml")
    text = (tmp_path / "d.yaml").read_text()
    assert "s3cret" not in text and "postgresql://ann@db.example.org/clinic#public.t" in text


def test_read_dataset_reads_csv_and_parquet_folders_and_checks_keys(tmp_path):
    frames = write_clinic(tmp_path)
    read = read_dataset(clinic_relations(tmp_path))
    assert len(read["visits"]) == len(frames["visits"]) and list(read["patients"]) == list(frames["patients"])
    frames["patients"].iloc[5:].to_csv(tmp_path / "patients.csv", index=False)  # patients 1-5 gone
    with pytest.raises(SchemaError, match="rows reference no patients row"):
        read_dataset(clinic_relations(tmp_path))


def test_a_folder_is_a_dataset_unless_it_holds_one_table_s_parts(tmp_path):
    write_clinic(tmp_path)
    assert set(folder_tables(tmp_path)) == {"patients", "visits"}
    assert folder_tables(tmp_path / "visits") is None  # two parts of one column layout: one table


def clinic_schema(metadata: sa.MetaData, schema: str | None = None) -> None:
    """Three levels with real FOREIGN KEY constraints: patients <- visits <- prescriptions."""
    sa.Table("patients", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("sex", sa.String(1)),
             schema=schema)
    prefix = f"{schema}." if schema else ""
    sa.Table("visits", metadata, sa.Column("visit_id", sa.Integer, primary_key=True),
             sa.Column("patient_id", sa.Integer, sa.ForeignKey(f"{prefix}patients.id"), nullable=False),
             sa.Column("visit_date", sa.Date), sa.Column("systolic", sa.Integer), schema=schema)
    sa.Table("prescriptions", metadata, sa.Column("rx_id", sa.Integer, primary_key=True),
             sa.Column("visit_id", sa.Integer, sa.ForeignKey(f"{prefix}visits.visit_id"), nullable=False),
             sa.Column("drug", sa.String(20)), sa.Column("rx_seq", sa.Integer), schema=schema)


def fill_clinic(engine: sa.Engine, schema: str | None = None) -> None:
    frames = patients_and_visits(n=30)
    visits = frames["visits"].assign(visit_date=pd.to_datetime(frames["visits"]["visit_date"]).dt.date)
    rx = pd.DataFrame({"rx_id": range(len(visits)), "visit_id": visits["visit_id"], "drug": "aspirin", "rx_seq": 1})
    metadata = sa.MetaData()
    clinic_schema(metadata, schema)
    metadata.create_all(engine)
    with engine.begin() as connection:
        for name, rows in (("patients", frames["patients"][["id", "sex"]]),
                           ("visits", visits[["visit_id", "patient_id", "visit_date", "systolic"]]),
                           ("prescriptions", rx)):
            connection.execute(metadata.tables[f"{schema}.{name}" if schema else name].insert(),
                               rows.to_dict("records"))


def check_clinic(relations: Relations, frames: dict) -> None:
    assert relations.root() == "patients"
    assert relations.tables["visits"].foreign_keys == (ForeignKey("patient_id", "patients", "id"),)
    assert relations.tables["prescriptions"].foreign_keys == (ForeignKey("visit_id", "visits", "visit_id"),)
    assert relations.tables["visits"].order_by == "visit_date"  # a DATE column, inferred: catalogues hold no order
    assert relations.tables["prescriptions"].order_by == "rx_seq"
    assert relations.parents_first() == ["patients", "visits", "prescriptions"]
    assert len(frames["patients"]) == 30 and frames["visits"]["patient_id"].isin(frames["patients"]["id"]).all()


def test_sqlite_catalogue_gives_the_declared_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine = sa.create_engine(url)
    fill_clinic(engine)
    engine.dispose()
    check_clinic(*read_database(url))


def test_sqlite_keys_of_several_columns_are_refused_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'wide.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE stays (site TEXT, stay INTEGER, PRIMARY KEY (site, stay))")
    engine.dispose()
    with pytest.raises(SchemaError, match=r"primary key has several columns \(site, stay\)"):
        relations_from_catalogue(url)


def test_a_missing_sqlite_file_is_not_created(tmp_path):
    with pytest.raises(InputError, match="SQLite database file not found"):
        relations_from_catalogue(f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()


@pytest.fixture
def pg_clinic(pg_engine):
    """The clinic in a schema of its own (the shared database holds other tests' tables), dropped afterwards."""
    schema = f"clinic_{uuid.uuid4().hex[:10]}"
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    fill_clinic(pg_engine, schema)
    yield schema
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


def test_postgresql_catalogue_gives_the_declared_keys(pg_clinic):
    relations, frames = read_database(POSTGRES, pg_clinic)
    check_clinic(relations, frames)
    assert relations.tables["visits"].path.endswith(f"#{pg_clinic}.visits")
    with pytest.raises(InputError, match="schema 'no_such_schema' not found"):
        read_database(POSTGRES, "no_such_schema")
