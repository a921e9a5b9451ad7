"""Shared fixtures, and what the `slow` marker means.

`slow` marks a test (or, with `pytestmark`, a module) that takes more than about a second on a 2-core CPU
machine and is not the only quick test of its area: releases beyond one per behaviour, neural fits of many
epochs, the whole Adult table, subprocesses and killed processes, Spark, headless Chromium, notebooks, DP
audits over many runs. `pytest -m "not slow"` (`make test-fast`) must stay under two minutes there and keep
at least one quick test of every area (schema, PII, models, privacy, metrics, gate, report, release, review,
CLI, API, scale); CI runs everything (`make test`). Time a new test with `--durations`; mark it if it is slow.
"""

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

ADULT_GZ = Path(__file__).resolve().parent / "data" / "adult.csv.gz"  # source and licence: tests/data/README.md


@pytest.fixture(scope="session")
def adult_path(tmp_path_factory) -> Path:
    """UCI Adult as the CSV a user would have (shipped compressed in the repository, unpacked once per run)."""
    path = tmp_path_factory.mktemp("adult") / "adult.csv"
    path.write_bytes(gzip.decompress(ADULT_GZ.read_bytes()))
    return path


@pytest.fixture(scope="session")
def adult(adult_path) -> pd.DataFrame:
    from tabsynth.io.files import read_table

    return read_table(adult_path)


@pytest.fixture
def people(tmp_path) -> Path:
    """A small table with PII, keys and ordinary columns, written as CSV."""
    import numpy as np
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(7)
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame({
        "patient_id": [f"P{100000 + i}" for i in range(n)],
        "name": [fake.name() for _ in range(n)],
        "email": [fake.email() for _ in range(n)],
        "phone": [fake.phone_number() for _ in range(n)],
        "ssn": [fake.ssn() for _ in range(n)],
        "address": [fake.street_address() for _ in range(n)],
        "age": rng.integers(18, 95, n),
        "weight_kg": np.round(rng.normal(75, 12, n), 1),
        "ward": rng.choice(["cardiology", "oncology", "surgery", "icu"], n),
        "admitted": pd.date_range("2023-01-01", periods=n, freq="13h").strftime("%Y-%m-%d %H:%M"),
    })
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def tabsynth_cli(capsys):
    """Run the command line in-process: returns (exit code, stdout, stderr)."""
    from tabsynth.cli import main

    def run(*args) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(autouse=True)
def ledger_url(tmp_path, monkeypatch) -> str:
    """Every test gets its own SQLite ledger, so releases never touch ~/.tabsynth."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("TABSYNTH_LEDGER", url)
    return url


POSTGRES = os.environ.get("TABSYNTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_engine():
    """PostgreSQL on this machine; unreachable → skip locally, but fail under CI."""
    engine = sa.create_engine(sa.make_url(POSTGRES).set(drivername="postgresql+psycopg2"))
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL at {POSTGRES} is not reachable: {str(exc.orig).strip().splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()
