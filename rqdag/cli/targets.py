"""Loading a workflow from a CLI target: ``module:attribute`` or ``path/to/file.py:attribute``."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from rqdag.errors import ImportPathError, WorkflowDefinitionError
from rqdag.shared.model.importing import resolve_attribute
from rqdag.shared.model.workflow import Workflow


@dataclass(frozen=True)
class LoadedTarget:
    """A workflow and what a worker needs to import its tasks."""

    workflow: Workflow
    modules: list[str]
    python_path: list[str]


def load_target(target: str) -> LoadedTarget:
    """Import the workflow named by ``target``; errors name the target."""
    spec, sep, attr = target.rpartition(":")
    if not sep or not spec or not attr:
        raise ImportPathError(
            f"target {target!r} is not 'package.module:attribute' or 'path/to/file.py:attribute'"
        )
    extra_path: list[str] = []
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise ImportPathError(f"target {target!r}: no such file {spec}")
        root, spec = _module_of_file(path)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        extra_path.append(str(root))
        importlib.invalidate_caches()
    obj = resolve_attribute(f"{spec}:{attr}", what="target")
    if callable(obj) and not isinstance(obj, Workflow):
        obj = obj()
    if not isinstance(obj, Workflow):
        raise WorkflowDefinitionError(f"target {target!r} is a {type(obj).__name__}, not a rqdag.Workflow")
    modules = sorted({spec} | {p.partition(":")[0] for t in obj.tasks if (p := t.func_path)})
    return LoadedTarget(obj, modules, extra_path)


def _module_of_file(path: Path) -> tuple[Path, str]:
    """The folder to import from and the dotted module name of a ``.py`` file.

    A file inside packages (folders with ``__init__.py``) gets its package's
    dotted name, so ``examples/hello.py`` and ``examples.hello`` name the same
    module and register the same task functions on workers.
    """
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)
