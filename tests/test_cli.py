"""End to end through the command line, as a data steward runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tabsynth.io.files import read_table

TABSYNTH = Path(sys.executable).with_name("tabsynth")


@pytest.mark.slow
def test_release_adult(tmp_path, tabsynth_cli, adult, adult_path):
    out = tmp_path / "rel"
    # copula: the default (--model auto) fits argn on Adult, minutes; benchmarks/default_model.py times that
    code, stdout, _ = tabsynth_cli("release", adult_path, "--out", out, "--seed", "0", "--model", "copula")
    assert code == 0, stdout
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.html", "synthetic.parquet"]
    synthetic = pd.read_parquet(out / "synthetic.parquet")
    assert list(synthetic.columns) == list(adult.columns)
    assert synthetic.dtypes.equals(adult.dtypes)
    for column in adult.select_dtypes(object):
        assert set(synthetic[column].dropna()) <= set(adult[column].dropna()), column
    manifest = json.loads((out / "manifest.json").read_text())
    metrics = {m["name"]: m["value"] for m in manifest["metrics"]}
    assert metrics["exact_copy_excess"] <= 0.005
    assert manifest["seed"] == {"value": 0, "reproducible": True, "note": manifest["seed"]["note"]}
    assert manifest["input"]["rows"] == len(adult) and len(manifest["input"]["sha256"]) == 64
    assert manifest["split"]["train_rows"] + manifest["split"]["holdout_rows"] == len(adult)
    assert len(synthetic) == manifest["split"]["train_rows"]
    assert {"numpy", "pandas", "copulas", "python"} <= set(manifest["versions"])
    assert "PASS" in stdout and "released" in stdout


@pytest.mark.slow
def test_same_seed_gives_identical_files(tmp_path, tabsynth_cli, people):
    for name in ("a", "b"):
        assert tabsynth_cli("release", people, "--out", tmp_path / name, "--seed", "5")[0] == 0
    assert (tmp_path / "a" / "synthetic.parquet").read_bytes() == (tmp_path / "b" / "synthetic.parquet").read_bytes()


@pytest.mark.slow
def test_unseeded_runs_differ_and_say_so(tmp_path, tabsynth_cli, people):
    for name in ("a", "b"):
        assert tabsynth_cli("release", people, "--out", tmp_path / name)[0] == 0
    first, second = (pd.read_parquet(tmp_path / n / "synthetic.parquet") for n in ("a", "b"))
    assert not first.equals(second)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["seed"]["reproducible"] is False


@pytest.mark.slow
def test_pii_is_replaced_and_keys_regenerated(tmp_path, tabsynth_cli, people):
    out = tmp_path / "rel"
    assert tabsynth_cli("release", people, "--out", out, "--seed", "1", "--format", "csv")[0] == 0
    real, synthetic = read_table(people), pd.read_csv(out / "synthetic.csv")
    assert list(synthetic.columns) == list(real.columns)
    for column in ("email", "phone", "ssn", "address", "patient_id"):
        assert not set(synthetic[column]) & set(real[column]), column
    assert synthetic["name"].isin(real["name"]).mean() < 0.05  # common names may coincide by chance
    assert synthetic["patient_id"].is_unique
    assert synthetic["email"].str.contains(r"@example\.(?:com|org|net)$").all()
    assert pd.to_datetime(synthetic["admitted"], format="%Y-%m-%d %H:%M").notna().all()


@pytest.mark.slow
def test_dropped_pii_column_is_absent(tmp_path, tabsynth_cli, people):
    schema = tmp_path / "schema.yaml"
    assert tabsynth_cli("inspect", people, "--out", schema)[0] == 0
    text = schema.read_text()
    schema.write_text(text.replace("pii: email\n  handling: fake", "pii: email\n  handling: drop"))
    out = tmp_path / "rel"
    assert tabsynth_cli("release", people, "--out", out, "--schema", schema, "--seed", "1")[0] == 0
    assert "email" not in pd.read_parquet(out / "synthetic.parquet").columns


def test_inspect_prints_flags_and_writes_schema(tmp_path, tabsynth_cli, people):
    schema = tmp_path / "schema.yaml"
    code, stdout, _ = tabsynth_cli("inspect", people, "--out", schema)
    assert code == 0 and schema.exists()
    for fragment in ("pii:email", "pii:person_name", "pii:phone", "pii:national_id", "patient_id"):
        assert fragment in stdout
    code, _, stderr = tabsynth_cli("inspect", people, "--out", schema)
    assert code == 2 and "already exists" in stderr
    code, _, stderr = tabsynth_cli("inspect", tmp_path / "nope.csv", "--out", schema)
    assert code == 2 and "input file not found" in stderr and "already exists" not in stderr


def test_blocked_release_writes_nothing(tmp_path, tabsynth_cli, people):
    policy = tmp_path / "impossible.yaml"
    policy.write_text("name: impossible\nrules:\n  - {metric: mean_column_tvd, op: '<', threshold: 0}\n")
    out = tmp_path / "rel"
    code, _, stderr = tabsynth_cli("release", people, "--out", out, "--policy", policy)
    assert code == 3
    assert "release blocked by policy 'impossible': mean_column_tvd" in stderr
    assert not out.exists()
    assert (tmp_path / "rel.blocked.html").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.csv", "input file not found"),
    "empty file": (lambda d: write_bytes(d / "empty.csv", b""), "the file is empty"),
    "header only": (lambda d: write_bytes(d / "header.csv", b"a,b,c\n"), "no rows"),
    "not utf-8": (lambda d: write_bytes(d / "latin.csv", "name\nJosé\n".encode("latin-1")), "not UTF-8"),
    "corrupt parquet": (lambda d: write_bytes(d / "bad.parquet", b"PAR1 not really"), "cannot read as Parquet"),
    "folder": (lambda d: d, "is a folder"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_one_line(tmp_path, tabsynth_cli, case):
    make, message = BAD_INPUTS[case]
    out = tmp_path / "out"
    code, _, stderr = tabsynth_cli("release", make(tmp_path), "--out", out)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr and len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--model", "gan9000"], "unknown model 'gan9000'"),
    (["--rows", "0"], "--rows must be a positive number"),
    (["--policy", "lenient"], "unknown policy 'lenient'"),
    (["--schema", "missing.yaml"], "schema file not found"),
])
def test_bad_options_get_one_line(tmp_path, tabsynth_cli, people, args, message):
    out = tmp_path / "out"
    code, _, stderr = tabsynth_cli("release", people, "--out", out, *args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["release", "x.csv", "--out", "o", "--rows", "many"], "'many' is not a valid integer"),
    (["release", "x.csv"], "Missing option '--out'"),
    (["release", "x.csv", "--out", "o", "--format", "xml"], "'xml' is not one of"),
    (["bake"], "No such command 'bake'"),
])
def test_usage_errors_get_one_line(tabsynth_cli, args, message):
    code, _, stderr = tabsynth_cli(*args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_existing_output_needs_overwrite(tmp_path, tabsynth_cli, people):
    out = tmp_path / "out"
    assert tabsynth_cli("release", people, "--out", out, "--seed", "1")[0] == 0
    code, _, stderr = tabsynth_cli("release", people, "--out", out)
    assert code == 2 and "already exists" in stderr
    before = (out / "manifest.json").read_text()
    assert tabsynth_cli("release", people, "--out", out, "--overwrite")[0] == 0
    assert (out / "manifest.json").read_text() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "people.csv"]


def test_overwrite_never_replaces_other_folders(tmp_path, tabsynth_cli, people):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    code, _, stderr = tabsynth_cli("release", people, "--out", mine, "--overwrite")
    assert code == 2 and "not a tabsynth release folder" in stderr and (mine / "keep.txt").exists()
    code, _, stderr = tabsynth_cli("release", people, "--out", tmp_path, "--overwrite")
    assert code == 2 and "input file is inside the output folder" in stderr and people.exists()


@pytest.mark.slow
def test_installed_command_demo_and_help(tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run([TABSYNTH, "demo", "--out", "demo"], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo" / "synthetic.parquet").exists() and (tmp_path / "demo" / "report.html").exists()
    result = subprocess.run([TABSYNTH, "release", "--help"], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "--seed" in result.stdout and "blocked" in result.stdout
    result = subprocess.run([TABSYNTH, "release", "nope.csv", "--out", "x"], cwd=tmp_path, capture_output=True,
                            text=True, env=env)
    assert result.returncode == 2 and result.stderr.strip() == "error: input file not found: nope.csv"
