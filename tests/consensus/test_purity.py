"""The consensus engine is a framework-free library: it may import NumPy (and torch lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

import labeling.consensus

FORBIDDEN = {"django", "rest_framework", "celery", "web3"}
PACKAGE = Path(labeling.consensus.__file__).parent


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_package_has_modules_to_check() -> None:
    assert len(list(PACKAGE.rglob("*.py"))) > 5


def test_no_module_imports_a_web_or_chain_framework() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_roots(path) & FORBIDDEN)
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_torch_is_only_imported_inside_functions() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names]
                module = getattr(node, "module", None) or ""
                assert "torch" not in [module.split(".")[0], *[n.split(".")[0] for n in names]], (
                    f"{path.name} imports torch at module level"
                )
