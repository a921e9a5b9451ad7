"""The floor plan holds: the import contracts of pyproject.toml (layers, the BUSL licence boundary, no cycles
within a package) and no import cycle anywhere, the root package included."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(folder: Path) -> subprocess.CompletedProcess:
    """`lint-imports` over the tabsynth package in `folder`, with the contracts of its pyproject.toml."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=folder, capture_output=True,
                          text=True, timeout=120)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_takes_part_in_an_import_cycle():
    """acyclic_siblings checks the modules of each package; this also sees cycles through the root package
    (which loads the public API, so a stage importing `tabsynth` would close one). Imports inside functions
    count: grimp reads them."""
    graph = grimp.build_graph("tabsynth", cache_dir=None)
    cycles = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back and imported != importer:
                cycle = (importer, *back[:-1])
                start = cycle.index(min(cycle))  # one entry per cycle, whichever module it was found from
                cycles.add(" -> ".join(cycle[start:] + cycle[:start]))
    assert sorted(cycles) == []


def test_the_contracts_catch_a_new_package_and_a_busl_import(tmp_path):
    """On a copy of the package: a new top-level package must be placed in the layers, and a BUSL library
    imported anywhere but tabsynth.models.sdv breaks the licence boundary (the sdv folder itself may)."""
    shutil.copytree(ROOT / "tabsynth", tmp_path / "tabsynth", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "tabsynth" / "newstage").mkdir()
    (tmp_path / "tabsynth" / "newstage" / "__init__.py").write_text("import copulas\n")
    (tmp_path / "tabsynth" / "models" / "probe.py").write_text("def fit():\n    from ctgan import CTGAN\n")
    (tmp_path / "tabsynth" / "models" / "sdv" / "probe.py").write_text("import rdt\nimport sdv\n")
    report = lint_imports(tmp_path).stdout
    assert "- tabsynth.newstage\n" in report  # listed among the modules that are not layers
    assert "tabsynth.newstage -> copulas" in report
    assert "tabsynth.models.probe -> ctgan" in report
    assert "tabsynth.models.sdv.probe" not in report
