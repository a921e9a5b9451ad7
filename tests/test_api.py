"""The public Python API: DataFrames in and out, with the gate, ledger, PII handling and constraints of the CLI."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import tabsynth
from tabsynth.io.files import read_table
from tabsynth.privacy.ledger import Ledger

DEMO = "tabsynth/data/pbc.csv"


def patients(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, n)
    return pd.DataFrame({
        "patient_id": np.arange(1000, 1000 + n),
        "full_name": [f"Zyxqua{i} Vorblenth" for i in range(n)],
        "age": age,
        "sex": pd.Categorical(rng.choice(["F", "M"], n)),
        "visits": pd.array(np.where(rng.random(n) < 0.1, None, rng.poisson(3, n)), dtype="Int64"),
        "cost": np.round(age * 31.5 + rng.normal(0, 200, n), 2),
    })


def test_import_is_light_and_the_api_is_listed():
    code = ("import sys, tabsynth; assert 'tabsynth.api' not in sys.modules and 'pandas' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('tabsynth', 'pandas'))); "
            "print(sorted(n for n in dir(tabsynth) if not n.startswith('_')))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(shown) == ["BudgetExceededError", "InputError", "Release", "ReleaseBlocked", "SchemaError",
                           "Synthesizer", "TabsynthError", "Verdict", "inspect", "release", "validate"]


def test_inspect_a_dataframe_finds_pii_keys_and_kinds():
    schema = tabsynth.inspect(patients())
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds["full_name"] == "pii" and kinds["patient_id"] == "id"
    assert kinds["age"] == "numerical" and kinds["sex"] in ("categorical", "boolean")
    assert schema["visits"].missing > 0  # a nullable Int64 column's missing values are seen


def test_synthesizer_fits_a_dataframe_fakes_pii_and_round_trips(tmp_path):
    real = patients()
    synthesizer = tabsynth.Synthesizer("copula").fit(real, seed=1)
    rows = synthesizer.sample(300, seed=2)
    assert list(rows.columns) == list(real.columns) and len(rows) == 300
    assert not set(rows["full_name"].dropna()) & set(real["full_name"])  # fakes, never a real name
    assert rows["patient_id"].is_unique
    assert synthesizer.sample(300, seed=2).equals(rows)
    loaded = tabsynth.Synthesizer.load(synthesizer.save(tmp_path / "model"))
    again = loaded.sample(300, seed=2)
    pd.testing.assert_frame_equal(again.drop(columns="full_name"), rows.drop(columns="full_name"))
    where = synthesizer.sample(100, where="age >= 60", seed=3)
    assert (where["age"] >= 60).all()


def test_a_dp_synthesizer_debits_the_ledger_and_never_spends_more(tmp_path):
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    synthesizer = tabsynth.Synthesizer("dp-marginal").fit(patients(), epsilon=1.0, ledger=ledger)
    assert synthesizer.privacy_["epsilon"] <= 1.0 + 1e-9
    assert len(Ledger(ledger).history()) == 1
    assert len(synthesizer.sample()) > 0  # its noisy row count


@pytest.mark.slow
def test_release_of_a_dataframe_equals_the_release_of_its_file(tmp_path):
    frame = read_table(DEMO)
    steps = []
    from_frame = tabsynth.release(frame, out=tmp_path / "a", model="copula", seed=7,
                                  progress=lambda what, done: steps.append((what, done)))
    assert steps[-1] == ("done", 1.0) and [done for _, done in steps] == sorted(done for _, done in steps)
    from_file = tabsynth.release(DEMO, out=tmp_path / "b", model="copula", seed=7)
    assert from_frame.passed and from_file.passed
    pd.testing.assert_frame_equal(from_frame.synthetic, from_file.synthetic)
    assert (tmp_path / "a" / "synthetic.parquet").read_bytes() == (tmp_path / "b" / "synthetic.parquet").read_bytes()
    assert from_frame.manifest["input"]["format"] == "dataframe"
    assert "<iframe" in from_frame.report._repr_html_() and "PASS" in from_frame._repr_html_()
    assert from_frame.metrics["exact_copy_excess"] >= 0


@pytest.mark.slow
def test_a_blocked_release_raises_and_writes_nothing(tmp_path):
    policy = tmp_path / "strict.yaml"
    policy.write_text("name: impossible\nrules:\n"
                      "  - {metric: mean_column_tvd, op: '<', threshold: 0}\n")
    with pytest.raises(tabsynth.ReleaseBlocked, match="mean_column_tvd"):
        tabsynth.release(patients(), out=tmp_path / "rel", model="copula", policy=str(policy), seed=1)
    assert not (tmp_path / "rel").exists()


def test_validate_dataframes_returns_the_verdict():
    real = patients(400, seed=0)
    leaked = patients(200, seed=1)
    leaked.loc[:4, "full_name"] = real["full_name"][:5].to_numpy()
    verdict = tabsynth.validate(real, leaked, holdout=patients(200, seed=2))
    assert not verdict.passed
    assert "pii_leak" in {r.metric for r in verdict.failures()}


def test_bad_dataframes_are_one_clear_error(tmp_path):
    with pytest.raises(tabsynth.InputError, match="no rows"):
        tabsynth.inspect(pd.DataFrame({"a": []}))
    with pytest.raises(tabsynth.InputError, match="duplicate column"):
        tabsynth.inspect(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(tabsynth.InputError, match="fit the synthesizer first"):
        tabsynth.Synthesizer("copula").sample(10)


def test_a_release_is_verified_signed_off_and_exported_from_python(tmp_path):
    result = tabsynth.release(read_table(DEMO), out=tmp_path / "rel", model="copula", seed=3)
    opened = tabsynth.Release.open(tmp_path / "rel")
    assert opened.verdict == result.verdict and opened.passed
    with pytest.raises(tabsynth.InputError, match="different person"):
        opened.approve(result.manifest["released_by"])
    approval = opened.approve("A. Reviewer", note="ticket 1")
    assert approval["reviewer"] == "A. Reviewer"
    exported = opened.export(tmp_path / "shared")
    assert exported.read_bytes() == (tmp_path / "rel" / "synthetic.parquet").read_bytes()
    (tmp_path / "rel" / "synthetic.parquet").write_bytes(b"tampered")
    with pytest.raises(tabsynth.TabsynthError, match="synthetic.parquet"):
        opened.verify()

