"""The bad-input corpus (generated here, never committed): each case releases a valid table, or stops with
one clear line naming the problem, exit code 2, nothing written and no privacy budget spent."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabsynth.errors import TabsynthError
from tabsynth.privacy.ledger import Ledger
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.release import release

N = 120
RNG = np.random.default_rng(5)


def _csv(frame: pd.DataFrame, **kwargs) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode("utf-8")


def _base(**columns) -> pd.DataFrame:
    return pd.DataFrame({"age": RNG.integers(18, 90, N), "ward": RNG.choice(["a", "b", "c"], N), **columns})


# name -> (file name, bytes, expected error fragment or None for a valid release)
CASES = {
    "empty file": ("t.csv", b"", "the file is empty"),
    "header only": ("t.csv", b"age,ward\n", "no rows"),
    "one row": ("t.csv", b"age,ward\n34,a\n", "at least"),
    "all-null column": ("t.csv", _csv(_base(note=[None] * N)), None),
    "constant column": ("t.csv", _csv(_base(site=["x"] * N)), None),
    "mixed types in one column": ("t.csv", _csv(_base(code=[1, "a", 2.5, None] * (N // 4))), None),
    "NaN and infinities": ("t.csv", _csv(_base(x=[np.nan, np.inf, -np.inf, 1.5] * (N // 4))), None),
    "unicode and punctuation in names": ("t.csv", _csv(_base(**{"âge (années)": RNG.random(N),
                                                                "weight, kg/m²": RNG.random(N)})), None),
    "duplicate column names": ("t.csv", b"age,age,ward\n" + b"".join(b"%d,%d,a\n" % (i, i) for i in range(N)),
                               "duplicate column"),
    "50,000 categories": ("t.csv", _csv(pd.DataFrame({"code": [f"C{i:05d}x" for i in range(50_000)],
                                                      "flag": RNG.choice(["y", "n"], 50_000)})), None),
    "2,000 columns": ("t.parquet", None, None),
    "timezone-aware dates": ("t.csv", _csv(_base(seen=pd.date_range("2024-03-30", periods=N, freq="h",
                                                                    tz="Europe/Paris").astype(str))), None),
    "invalid dates": ("t.csv", _csv(_base(seen=["2024-02-30", "2024-01-05", "not a date", "2024-13-01"] * (N // 4))),
                      None),
    "20-digit integers": ("t.csv", _csv(_base(big=[str(10**19 + i * 7919) for i in range(N)])), None),
    "boolean-like strings": ("t.csv", _csv(_base(flag=["yes", "no", "Y", "N", "true", "False"] * (N // 6))), None),
    "wrong delimiter": ("t.csv", _csv(_base(), sep=";"), None),
    "not UTF-8": ("t.csv", "name,age\nJosé,3\n".encode("latin-1"), "not UTF-8"),
    "only PII columns": ("t.csv", _csv(pd.DataFrame({"email": [f"user{i}@mail.org" for i in range(N)],
                                                     "phone": [f"+1 212 555 {1000 + i}" for i in range(N)]})),
                         "no columns to model"),
}

# Slow cases (tests/conftest.py says what slow means): releases of a long or a wide table, and through the API
# every valid release (a DP fit each; the command line releases the same files quickly and stays in the fast set).
SLOW_CASES = {"50,000 categories", "2,000 columns"}
CLI_CASES = [pytest.param(case, marks=pytest.mark.slow) if case in SLOW_CASES else case for case in CASES]
API_CASES = [case if CASES[case][2] else pytest.param(case, marks=pytest.mark.slow) for case in CASES]


def _write(case: str, folder: Path) -> tuple[Path, str | None]:
    name, data, error = CASES[case]
    path = folder / name
    if case == "2,000 columns":
        pd.DataFrame(RNG.normal(size=(60, 2000)), columns=[f"c{i}" for i in range(2000)]).to_parquet(path)
    else:
        path.write_bytes(data)
    return path, error


@pytest.fixture
def permissive_policy(tmp_path) -> Path:
    """Robustness, not quality, is on trial here: a policy every sound release passes."""
    path = tmp_path / "permissive.yaml"
    path.write_text("name: permissive\nrules:\n  - {metric: exact_copy_excess, op: '<=', threshold: 1}\n")
    return path


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli(case, tmp_path, tabsynth_cli, permissive_policy):
    data, error = _write(case, tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = tabsynth_cli("release", data, "--out", out, "--policy", permissive_policy, "--seed", "0")
    if error is None:
        assert code == 0, stderr
        assert (out / "manifest.json").is_file() and (out / "synthetic.parquet").is_file()
        return
    assert code == 2 and error in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists() and not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("case", API_CASES)
def test_api(case, tmp_path, ledger_url, permissive_policy):
    """The Python API behaves as the CLI does; errors come before the ledger is debited (DP model here)."""
    data, error = _write(case, tmp_path)
    if case == "2,000 columns":  # AIM's candidates grow as (2,000 choose 3): refused before any work
        error = "of memory"
    options = ReleaseOptions(data=data, out=tmp_path / "out", model="dp-marginal", epsilon=1.0, source_id="corpus",
                             policy=str(permissive_policy), seed=0)
    if error is None:
        assert release(options).out == tmp_path / "out"
        assert Ledger(ledger_url).spent("corpus")[0] == pytest.approx(1.0)
        return
    with pytest.raises(TabsynthError, match=error):
        release(options)
    assert Ledger(ledger_url).spent("corpus") == (0.0, 0.0)
    assert not (tmp_path / "out").exists()


def test_memory_preflight_refuses_before_fitting(tmp_path, tabsynth_cli, monkeypatch, people):
    monkeypatch.setenv("TABSYNTH_MEMORY_LIMIT", str(2**20))  # a machine with 1 MB to spare
    code, _, stderr = tabsynth_cli("release", people, "--out", tmp_path / "rel")
    assert code == 2 and "needs about" in stderr and "of memory" in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "rel").exists()
