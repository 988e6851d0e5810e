"""The package's layers, as docs/architecture.md states them, checked on every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rqdag

PACKAGE = Path(rqdag.__file__).parent

# (modules under this folder, may not import these packages)
RULES = [
    ("shared/model", ("redis", "rq", "rqdag.shared.store", "rqdag.coordinator", "rqdag.worker", "rqdag.cli")),
    ("shared", ("rqdag.coordinator", "rqdag.worker", "rqdag.cli", "rqdag.web", "rqdag.local")),
    ("coordinator", ("rqdag.worker", "rqdag.cli", "rqdag.web")),
    ("worker", ("rqdag.coordinator", "rqdag.cli", "rqdag.web")),
]


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (imports inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def breaks(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_a_layer_imports_nothing_above_it(folder: str, forbidden: tuple[str, ...]) -> None:
    found = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for name in sorted(imported(path))
        if breaks(name, forbidden)
    ]
    assert found == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import redis\n\ndef f():\n    from rqdag.coordinator import state\n")
    assert {n for n in imported(module) if breaks(n, RULES[0][1])} == {"redis", "rqdag.coordinator"}
