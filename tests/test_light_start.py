"""`tabsynth --help`, every command's --help, `tabsynth models` and the Spark command line's help import no heavy
package: they answer at once.

Each check runs in a fresh interpreter, since this test process has long imported them all. The time itself is
measured by benchmarks/cli_start.py, not here.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tabsynth.cli import spark as spark_cli
from tabsynth.errors import ModelError
from tabsynth.models.base import is_private
from tabsynth.models.registry import REGISTRY, ModelEntry, create_model, model_class
from tabsynth.run.spark import SCHEMA_SAMPLE_ROWS

# Imported only by the commands that need them: models, Spark, expectations, DuckDB, plots, databases, tables.
HEAVY = ("torch", "opacus", "sdv", "ctgan", "rdt", "copulas", "great_expectations", "pyspark", "duckdb", "scipy",
         "sklearn", "sqlalchemy", "matplotlib", "pandas")


def heavy_modules_after(code: str) -> list[str]:
    """Run `code` in a new interpreter; the heavy packages it left in sys.modules."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return sorted(set(json.loads(done.stdout.splitlines()[-1])) & set(HEAVY))


def test_import_tabsynth_is_light():
    assert heavy_modules_after("import tabsynth") == []


def test_help_and_the_model_list_import_no_heavy_package():
    code = """
from click.testing import CliRunner
from tabsynth.cli.app import cli

runner = CliRunner()
for args in (["--help"], ["models"], *([name, "--help"] for name in cli.commands)):
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, (args, result.output)
listed = runner.invoke(cli, ["models"]).output
assert "dp-marginal  DP" in listed and "copula" in listed, listed
"""
    assert heavy_modules_after(code) == []


def test_the_registry_agrees_with_the_classes_it_names():
    for name, entry in REGISTRY.items():
        cls = model_class(name)
        assert (cls.name, is_private(cls), cls.__name__) == (name, entry.private, entry.cls), name
        assert entry.description and "\n" not in entry.description, name


def test_a_registry_entry_that_misstates_privacy_is_refused(monkeypatch):
    monkeypatch.setitem(REGISTRY, "dp-mislabelled", ModelEntry("tabsynth.models.dp_marginal", "DPMarginal", False,
                                                               "says it is not DP, but its class is"))
    with pytest.raises(ModelError, match="'dp-mislabelled': the registry says differentially private is False"):
        create_model("dp-mislabelled")


def test_the_spark_command_line_helps_lightly_and_runs_as_a_script_file(tmp_path):
    code = """
from click.testing import CliRunner
from tabsynth.cli.spark import main

for args in (["--help"], ["fit", "--help"], ["sample", "--help"]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (args, result.output)
"""
    assert heavy_modules_after(code) == []
    script = Path(spark_cli.__file__)  # spark-submit runs the file itself, from anywhere: absolute imports only
    done = subprocess.run([sys.executable, str(script), "fit", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"inferred from {SCHEMA_SAMPLE_ROWS:,} random rows" in " ".join(done.stdout.split())
