"""Per-person DP releases of linked tables (and of a flat table with a repeated person key): real dp-argn fits
on small tables, the ledger, the manifest's public part, the refusals, and the mechanics of per-person
sensitivity."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import tabsynth
from tabsynth.errors import InputError, TabsynthError
from tabsynth.models.linked.person_rows import check_person_layout, fold, unfold, wide_schema
from tabsynth.privacy.accounting import gaussian_sigma, zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.facts import FACTS_SHARE
from tabsynth.privacy.ledger import Ledger
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.privacy.person_facts import one_row_per_person, pay_for_event_domains, pay_for_person_facts
from tabsynth.run.dataset import dataset_schemas
from tabsynth.table.dataset import relations_from_dict
from tabsynth.table.schema import Column
from tabsynth.testing import patients_and_visits

FAST = {"epochs": 1, "batch_size": 32, "embedding": 2, "hidden": 8, "threads": 1}
RELATIONS = {"tables": {
    "patients": {"primary_key": "patient_id"},
    "visits": {"primary_key": "visit_id", "order_by": "visit_date", "max_events": 3,
               "foreign_keys": [{"column": "patient_id", "references": "patients.patient_id"}]}}}


def _release(tmp_path, tables, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tabsynth.release(tables, out=tmp_path / "rel", relations=RELATIONS, params=FAST, progress=False,
                                ledger=f"sqlite:///{tmp_path / 'ledger.db'}", **options)


def _entries(tmp_path) -> int:
    path = tmp_path / "ledger.db"
    return len(Ledger(f"sqlite:///{path}").history()) if path.exists() else 0


def _budget_only_policy(tmp_path) -> str:
    """A policy whose one rule reads a DP figure (the ε spent): the release passes whatever the noise drew, so the
    tests below always read a published folder (the default policy blocks some draws on 90-120 patients)."""
    path = tmp_path / "budget-only.yaml"
    path.write_text("name: budget-only\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 4}\n")
    return str(path)


def test_dp_release_of_linked_tables_is_per_person_and_charged_once(tmp_path):
    tables = patients_and_visits(120)
    result = _release(tmp_path, tables, epsilon=4.0, policy=_budget_only_policy(tmp_path), seed=3)
    manifest = json.loads((tmp_path / "rel" / "manifest.json").read_text())
    privacy = manifest["privacy"]
    assert privacy["unit"] == "person" and 0 < privacy["epsilon"] <= 4.0 and privacy["delta"] <= 1e-9
    assert manifest["split"] == {"holdout_share": manifest["split"]["holdout_share"], "method":
                                 manifest["split"]["method"], "unit": "person"}  # no sizes of the parts
    assert manifest["sampling"]["persons_source"] == "noisy person count"
    assert manifest["dataset"]["max_events"] == {"visits": 3}
    visits, patients = result.tables["visits"], result.tables["patients"]
    assert visits["patient_id"].isin(patients["patient_id"]).all() and patients["patient_id"].is_unique
    assert visits.groupby("patient_id").size().max() <= 3
    assert _entries(tmp_path) == 1  # the dataset, once
    assert (tmp_path / "rel" / "internal" / "assessment.json").is_file()


def test_manifest_and_report_reveal_no_private_count(tmp_path):
    tables = patients_and_visits(90)
    _release(tmp_path, tables, epsilon=4.0, policy=_budget_only_policy(tmp_path), seed=1)
    folder = tmp_path / "rel"
    text = (folder / "manifest.json").read_text()
    manifest = json.loads(text)
    for key in ("train_persons", "holdout_persons", "train_rows"):
        assert key not in text
    assert "tables" not in manifest["input"]
    shared = {m["name"] for m in manifest["metrics"]}
    assert not any(name.startswith(("person_dcr", "exact_sequence", "person_membership")) for name in shared)
    report = (folder / "report.html").read_text()
    assert "withheld (a DP release)" in report and f">{len(tables['visits']):,}<" not in report


@pytest.mark.parametrize("options, message", [
    ({"model": "dp-marginal", "epsilon": 1.0}, "no per-person differential privacy"),
    ({"model": "dp-argn", "epsilon": 1.0, "params": {"wings": 2}}, "wings"),
    ({"model": "dp-argn", "epsilon": 1.0, "params": {"epochs": -1}}, "epochs must be an integer"),
    ({"epsilon": 1.0, "rows": 0}, "--rows"),
])
def test_refusals_write_nothing_and_spend_nothing(tmp_path, options, message):
    params = options.pop("params", FAST)
    with pytest.raises(TabsynthError, match=message):
        tabsynth.release(patients_and_visits(40), out=tmp_path / "rel", relations=RELATIONS, params=params,
                         progress=False, ledger=f"sqlite:///{tmp_path / 'ledger.db'}", **options)
    assert not (tmp_path / "rel").exists() and _entries(tmp_path) == 0


def test_a_grandchild_table_is_refused_before_anything_is_read():
    relations = relations_from_dict({"tables": {
        "patients": {"primary_key": "patient_id"},
        "visits": {"primary_key": "visit_id", "foreign_keys": [{"column": "patient_id",
                                                                 "references": "patients.patient_id"}]},
        "tests": {"primary_key": "test_id", "foreign_keys": [{"column": "visit_id",
                                                               "references": "visits.visit_id"}]}}})
    with pytest.raises(InputError, match="one level of child tables"):
        check_person_layout(relations)


def test_flat_table_with_a_repeated_person_key_accepts_dp(tmp_path):
    rng = np.random.default_rng(0)
    flat = pd.DataFrame({"subject_id": np.repeat(np.arange(60), 3), "dose": rng.integers(1, 5, 180),
                         "arm": np.repeat(rng.choice(["a", "b"], 60), 3)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = tabsynth.release(flat, out=tmp_path / "rel", model="dp-argn", epsilon=4.0, params=FAST,
                                      progress=False,
                                      ledger=f"sqlite:///{tmp_path / 'ledger.db'}", policy="default")
            assert result.manifest["privacy"]["unit"] == "person"
        except tabsynth.ReleaseBlocked:
            pass
    assert _entries(tmp_path) == 1


def test_each_person_is_one_row_of_every_measurement():
    """Sensitivity one per person: the child facts and domains read one row per person, whatever their count."""
    tables = patients_and_visits(50)
    visits = pd.concat([tables["visits"]] + [tables["visits"][tables["visits"]["patient_id"] == 1000]] * 20)
    sample = one_row_per_person(visits, "patient_id", np.random.default_rng(0))
    assert sample["patient_id"].is_unique and set(sample["patient_id"]) == set(visits["patient_id"])
    budget = Budget(1.0, 1e-9, RandomSource.seeded(1))
    schemas, spent, record = pay_for_person_facts({"patients": tables["patients"], "visits": sample}, {}, budget)
    rho = FACTS_SHARE * zcdp_rho(1.0, 1e-9 / 2) / 2
    by_table = {name: [c for c in spent.prior if c.record["table"] == name] for name in ("patients", "visits")}
    for charges in by_table.values():  # sensitivity 1 per column: σ for √columns at one row per person
        assert charges[0].record["sigma"] == pytest.approx(gaussian_sigma(rho, np.sqrt(len(charges))), rel=1e-6)
    ward = Column("ward", "categorical", "object")
    columns, after, domains = pay_for_event_domains({"visits": sample}, {"visits": [ward]}, spent)
    assert len(after.prior) == len(spent.prior) + 1 and domains["unit"] == "person"
    assert columns["visits"][0].declared.categories is not None


def test_fold_and_unfold_keep_persons_and_links():
    tables = patients_and_visits(30)
    relations = relations_from_dict(RELATIONS)
    schemas, caps = dataset_schemas(tables, relations), check_person_layout(relations)
    wide = fold(tables, relations, schemas, caps)
    assert len(wide) == 30 and wide["visits.__events"].max() <= 3
    assert set(wide.columns) >= {"visits.ward#1", "visits.cost#3"}
    assert wide_schema(relations, schemas, caps)["visits.ward#2"].nullable
    back = unfold(wide, relations, schemas, caps)
    assert len(back["visits"]) == int(wide["visits.__events"].sum())
    assert back["visits"]["patient_id"].isin(back["patients"]["patient_id"]).all()
    first = tables["visits"].sort_values(["patient_id", "visit_date"]).groupby("patient_id").head(3)
    assert sorted(back["visits"]["cost"]) == sorted(first["cost"])
