"""The README's examples run: every Python block, its constraints file (loads and compiles), and its review commands."""

from __future__ import annotations

import os
import re
import shlex
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _command(program: str) -> list[str]:
    """The README's `tabsynth PROGRAM ...` line from its usage block, without the comment."""
    for block in _blocks("bash"):
        for line in block.splitlines():
            if line.startswith(f"tabsynth {program} "):
                return shlex.split(line.split("#")[0])[1:]
    raise AssertionError(f"no `tabsynth {program}` line in README.md")


def test_the_constraints_example_loads_and_compiles(tmp_path):
    from tabsynth.rules.constraints import compile_rules, load_constraints
    from tabsynth.table.infer import infer_schema

    [block] = [b for b in _blocks("yaml") if "constraints:" in b]
    path = tmp_path / "constraints.yaml"
    path.write_text(block)
    constraints = load_constraints(path)
    assert len(constraints) == 4
    rng = np.random.default_rng(0)
    admitted = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, 50), unit="D")
    table = pd.DataFrame({"admitted": admitted, "discharged": admitted + pd.Timedelta(days=3),
                          "age": rng.integers(0, 100, 50), "zip": rng.choice(["75001", "69002"], 50),
                          "city": rng.choice(["Paris", "Lyon"], 50), "state": rng.choice(["IDF", "ARA"], 50)})
    rules = compile_rules(infer_schema(table), constraints, real=table)
    labels = [rule.label() for rule in rules]
    assert any("admitted <= discharged" in label for label in labels) and any("zip" in label for label in labels)


def test_the_review_commands_run_as_written(people, tmp_path, tabsynth_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = pd.read_csv(people)
    table.iloc[:300].to_csv("patients.csv", index=False)
    release = _command("release")
    assert release[:3] == ["release", "patients.csv", "--out"] and len(release) == 4
    assert tabsynth_cli(*release, "--seed", "1")[0] == 0
    code, stdout, stderr = tabsynth_cli(*_command("export"))
    assert code == 0, stderr
    assert Path("shared/synthetic.parquet").read_bytes() == Path("release/synthetic.parquet").read_bytes()
    assert tabsynth_cli(*_command("verify"))[0] == 0

    # validate: the real rows, tabsynth's synthetic rows as CSV (dates as the real file writes them), unseen rows
    Path("patients.csv").rename("real.csv")
    synthetic = pd.read_parquet("shared/synthetic.parquet")
    synthetic.assign(admitted=synthetic["admitted"].dt.strftime("%Y-%m-%d %H:%M")).to_csv("synthetic.csv", index=False)
    table.iloc[300:].to_csv("unseen.csv", index=False)
    code, stdout, stderr = tabsynth_cli(*_command("validate"))
    assert code in (0, 3), stderr  # runs on a file with PII and key columns; utility rules may block
    assert "constraint_violations" not in stderr and "pii_leak" not in stderr and "check_error" not in stderr


def test_the_python_examples_run_in_order(people, tmp_path, monkeypatch):
    """Every ```python block, top to bottom in one namespace, in a folder holding the `patients.csv` they read."""
    blocks = _blocks("python")
    assert blocks and blocks[0].count("\n") == 5  # the usage opens with a five-line example
    monkeypatch.chdir(tmp_path)
    Path(people).rename("patients.csv")
    names: dict = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md, python block {number}", "exec"), names)
    assert names["result"].passed and Path("release/manifest.json").is_file()
    assert len(names["result"].synthetic) > 0 and Path("model").is_dir()
    assert names["older"]["age"].min() >= 65 and set(names["older"]["ward"]) == {"cardiology"}
    assert names["balanced"]["ward"].eq("icu").mean() == 0.3
    assert isinstance(names["verdict"].passed, bool)


@pytest.mark.slow
def test_every_command_of_the_usage_block_runs_in_order(people, tmp_path, tabsynth_cli, monkeypatch):
    """Each `tabsynth ...` line of the README's command block, as written, on a patients.csv (the files the
    validate line compares are made first, as a user would have them)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TABSYNTH_LEDGER", f"sqlite:///{tmp_path / 'ledger.db'}")
    table = pd.read_csv(people)
    table.to_csv("patients.csv", index=False)
    table.iloc[:300].to_csv("real.csv", index=False)
    table.iloc[300:].to_csv("unseen.csv", index=False)
    lines = _usage_lines()
    assert len(lines) >= 14
    for line in lines:
        if line[0] == "validate":
            pd.read_parquet("release/synthetic.parquet").to_csv("synthetic.csv", index=False)
        code, stdout, stderr = tabsynth_cli(*line)
        assert code in ((0, 3) if line[0] == "validate" else (0,)), f"tabsynth {shlex.join(line)}: {stderr}"
    assert Path("dp-release/manifest.json").is_file() and Path("shared/synthetic.parquet").is_file()
    assert (pd.read_parquet("older.parquet")["age"] >= 65).all()
    assert pd.read_parquet("balanced.parquet")["ward"].eq("icu").mean() == pytest.approx(0.3, abs=0.01)


def _usage_lines() -> list[list[str]]:
    """The `tabsynth` lines of the usage block (continuations joined, comments dropped, "a, b" split)."""
    [block] = [b for b in _blocks("bash") if b.startswith("tabsynth inspect")]
    text = block.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        commands += [shlex.split(part)[1:] for part in line.split("#")[0].split(", ") if part.strip()]
    return commands


# The README's database examples name a server `db`; here they run against the test PostgreSQL, each table in a
# schema of its own (dropped afterwards), and a SQLite file and a Parquet folder in the working folder.
POSTGRES = os.environ.get("TABSYNTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.mark.slow
def test_the_database_and_duckdb_examples_run_as_written(people, tmp_path, tabsynth_cli, monkeypatch):
    import sqlalchemy as sa

    engine = sa.create_engine(sa.make_url(POSTGRES).set(drivername="postgresql+psycopg2"))
    try:
        engine.connect().close()
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL at {POSTGRES} is not reachable: {exc.orig}")
    schema = f"readme_{uuid.uuid4().hex[:8]}"
    table = pd.read_csv(people).assign(year=lambda t: 2018 + np.arange(len(t)) % 6)
    monkeypatch.setenv("TABSYNTH_LEDGER", f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        for name in ("patients", "claims"):
            table.to_sql(name, engine, schema=schema, index=False)
        for number, line in enumerate(_database_lines(schema), 1):
            folder = tmp_path / f"example{number}"
            folder.mkdir()
            monkeypatch.chdir(folder)
            table.to_sql("patients", sa.create_engine("sqlite:///clinic.db"), index=False)
            Path("claims").mkdir()
            for part, rows in enumerate((table[:200], table[200:])):
                rows.to_parquet(f"claims/part-{part}.parquet", index=False)
            code, stdout, stderr = tabsynth_cli(*line)
            assert code == 0, f"tabsynth {shlex.join(line)}: {stderr}"
        with engine.connect() as connection:
            copied = connection.execute(sa.text(f"SELECT count(*) FROM {schema}.synthetic_patients")).scalar()
        assert copied > 0  # the first example filled its --out-table
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def _database_lines(schema: str) -> list[list[str]]:
    """The `tabsynth` lines of the README's database and DuckDB blocks, the server `db` replaced by the test
    PostgreSQL and the tables' schema by `schema`."""
    blocks = [b for b in _blocks("bash") if "--engine duckdb" in b or "--out-table" in b]
    assert len(blocks) == 2
    lines = []
    names = {"public.patients": f"{schema}.patients", "synthetic.patients": f"{schema}.synthetic_patients",
             "--out-table s.p": f"--out-table {schema}.p", "--table claims": f"--table {schema}.claims",
             "FROM patients": f"FROM {schema}.patients"}
    for line in "".join(blocks).splitlines():
        for server in ("postgresql://me@db:5432/clinic", "postgresql://me@db/share", "postgresql://me@db/claims"):
            line = line.replace(server, POSTGRES)
        for name, test_name in names.items():
            line = line.replace(name, test_name)
        if line.startswith("tabsynth "):
            lines.append(shlex.split(line.split("#")[0])[1:])
    return lines
