"""DP noise comes from the OS CSPRNG on every product path: `--seed` fixes only the split and the sampling."""

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tabsynth
from tabsynth.table.infer import infer_schema

NOISE_SEED_KEYS = ("noise_seed", '"seed": ')


@pytest.fixture
def neighbours(tmp_path) -> tuple[Path, Path]:
    """D and D plus one row, as CSV files, and a schema file declaring every column (this is about noise)."""
    rng = np.random.default_rng(5)
    n = 600
    frame = pd.DataFrame({"age": rng.integers(20, 90, n), "sex": rng.choice(["F", "M"], n),
                          "stage": rng.choice(["I", "II", "III"], n)})
    extra = pd.DataFrame({"age": [41], "sex": ["F"], "stage": ["II"]})
    paths = tmp_path / "d.csv", tmp_path / "d_plus_one.csv"
    frame.to_csv(paths[0], index=False)
    pd.concat([frame, extra], ignore_index=True).to_csv(paths[1], index=False)
    infer_schema(frame).save(tmp_path / "schema.yaml")
    return paths


def _fit_state(tabsynth_cli, data: Path, out: Path) -> dict:
    code, _, stderr = tabsynth_cli("fit", data, "--out", out, "--model", "dp-marginal", "--seed", "4",
                                   "--schema", data.parent / "schema.yaml",
                                   "--param", "iterations=20", "--param", "final_iterations=50")
    assert code == 0, stderr
    return json.loads((out / "model.json").read_text())


def test_a_seeded_dp_fit_draws_fresh_noise_and_stores_no_noise_seed(neighbours, tmp_path, tabsynth_cli):
    """With a shared noise seed, fits of D and D + one row differ by exactly one in the noisy total."""
    first, second = (_fit_state(tabsynth_cli, data, tmp_path / f"model{i}") for i, data in enumerate(neighbours))
    totals = [state["state"]["model"]["total"] for state in (first, second)]
    assert abs((totals[1] - totals[0]) - 1.0) > 1e-6
    again = _fit_state(tabsynth_cli, neighbours[0], tmp_path / "again")
    assert again["state"]["model"]["total"] != totals[0]  # same data, same --seed: fresh noise
    noise = first["state"]["privacy"]["noise"]
    assert noise["kind"] == "system" and "seed" not in noise
    assert not any(key in (tmp_path / "model0" / "model.json").read_text() for key in NOISE_SEED_KEYS)


def test_a_seeded_dp_release_says_the_seed_fixes_only_split_and_sampling(neighbours, tmp_path, tabsynth_cli):
    policy = tmp_path / "dp.yaml"
    policy.write_text("name: dp\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n")
    out = tmp_path / "rel"
    code, _, stderr = tabsynth_cli("release", neighbours[0], "--out", out, "--model", "dp-marginal", "--seed", "4",
                                   "--policy", policy, "--source-id", "d", "--schema", tmp_path / "schema.yaml",
                                   "--param", "iterations=20",
                                   "--param", "final_iterations=50")
    assert code == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["privacy"]["noise"]["kind"] == "system" and "seed" not in manifest["privacy"]["noise"]
    assert manifest["seed"]["value"] == 4 and manifest["seed"]["reproducible"] is False
    assert "operating system" in manifest["seed"]["note"] and "split" in manifest["seed"]["note"]
    assert "noise_seed" not in (out / "manifest.json").read_text()


def test_the_seed_option_help_says_dp_noise_is_never_seeded(tabsynth_cli):
    for command in ("release", "fit"):
        code, stdout, _ = tabsynth_cli(command, "--help")
        assert code == 0 and "DP noise" in stdout and "operating system" in " ".join(stdout.split())


def test_no_product_module_builds_a_seeded_noise_source():
    """`RandomSource.seeded` is for tests only: no CLI, pipeline or engine code may construct it."""
    package = Path(tabsynth.__file__).parent
    allowed = {package / "testing.py", package / "privacy" / "mechanisms.py"}
    offenders = []
    for path in package.rglob("*.py"):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            seeded = isinstance(node, ast.Attribute) and node.attr == "seeded"
            direct = (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                      and node.func.id == "RandomSource" and (node.args or node.keywords))
            if seeded or direct:
                offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []
