"""BUSL-1.1 libraries (sdv, ctgan, rdt, copulas) may be imported only inside tabsynth/models/sdv/."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tabsynth"
BUSL = {"sdv", "ctgan", "rdt", "copulas", "deepecho"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_busl_imports_stay_in_one_folder():
    boundary = PACKAGE / "models" / "sdv"
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if boundary not in p.parents and imported_roots(p) & BUSL]
    assert offenders == []
    assert any(imported_roots(p) & BUSL for p in boundary.glob("*.py")), "the boundary folder is where they live"
