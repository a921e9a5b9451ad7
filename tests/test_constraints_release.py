"""Released tables meet every schema fact and user constraint, checked by the Great Expectations suite."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabsynth.io.files import read_table
from tabsynth.metrics.constraints import check_constraints
from tabsynth.rules.constraints import load_constraints
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.release import release
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema


@pytest.fixture
def stays(tmp_path) -> tuple[Path, Path]:
    rng = np.random.default_rng(2)
    n = 1500
    admitted = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D")
    frame = pd.DataFrame({
        "admitted": admitted.strftime("%Y-%m-%d"),
        "discharged": (admitted + pd.to_timedelta(rng.integers(0, 30, n), "D")).strftime("%Y-%m-%d"),
        "age": rng.integers(0, 100, n),
        "ward": rng.choice(["cardiology", "oncology", "icu"], n),
        "cost": np.round(rng.lognormal(8, 1, n), 2),
    })
    data = tmp_path / "stays.csv"
    frame.to_csv(data, index=False)
    rules = tmp_path / "constraints.yaml"
    rules.write_text("constraints:\n"
                     "  - check: admitted <= discharged\n"
                     "  - check: \"ward != 'icu' or age >= 18\"\n"
                     "  - range: {column: cost, min: 0, max: 1000000}\n")
    return data, rules


@pytest.mark.parametrize("model", ["copula", pytest.param("dp-marginal", marks=pytest.mark.slow)])
def test_released_rows_meet_every_constraint(stays, tmp_path, model, permissive):
    data, rules = stays
    result = release(ReleaseOptions(data=data, out=tmp_path / "rel", model=model, constraints=rules,
                                    policy=str(permissive), seed=1))
    raw = read_table(data)
    schema = infer_schema(raw)
    synthetic = conform(read_table(tmp_path / "rel" / "synthetic.parquet"), schema)
    # A DP release honours declared facts only: the private min, max and category lists are not its to keep.
    facts = schema if model == "copula" else Schema.from_dict(schema.public())
    checked = {m.name: m for m in check_constraints(synthetic, facts, load_constraints(rules),
                                                   real=conform(raw, schema))}
    assert checked["constraint_valid_share"].value == 1.0
    user_rules = [e for e in checked["constraint_violations"].details["expectations"] if "admitted" in e["rule"]]
    assert user_rules and all(e["passed"] for e in user_rules)
    assert result.manifest["sampling"]["rejected_by_constraints"] >= 0


@pytest.mark.slow
def test_adult_release_meets_the_schema(adult_path, tmp_path, permissive):
    release(ReleaseOptions(data=adult_path, out=tmp_path / "rel", model="copula", policy=str(permissive), seed=2))
    raw = read_table(adult_path)
    schema = infer_schema(raw)
    synthetic = conform(read_table(tmp_path / "rel" / "synthetic.parquet"), schema)
    checked = {m.name: m for m in check_constraints(synthetic, schema, [], real=conform(raw, schema))}
    assert checked["constraint_violations"].value == 0 and checked["constraint_valid_share"].value == 1.0


@pytest.fixture
def permissive(tmp_path) -> Path:
    path = tmp_path / "permissive.yaml"
    path.write_text("name: permissive\nrules:\n  - {metric: constraint_violations, op: '<=', threshold: 0}\n")
    return path
