"""Loading a workflow from a CLI target: ``module:attribute`` or ``path/to/file.py:attribute``.

The same two spellings name a worker's ``--tasks`` modules (``examples.shop`` or
``examples/shop.py``) and its ``--context`` factory (``examples/shop.py:make_context``).
"""

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
    spec, extra_path = importable_module(spec, what=f"target {target!r}")
    obj = resolve_attribute(f"{spec}:{attr}", what="target")
    if callable(obj) and not isinstance(obj, Workflow):
        obj = obj()
    if not isinstance(obj, Workflow):
        raise WorkflowDefinitionError(f"target {target!r} is a {type(obj).__name__}, not a rqdag.Workflow")
    modules = sorted({spec} | {p.partition(":")[0] for t in obj.tasks if (p := t.func_path)})
    return LoadedTarget(obj, modules, extra_path)


def is_file_spec(spec: str) -> bool:
    """Tell whether ``spec`` (the part before ``:``) names a file rather than a module."""
    return spec.endswith(".py") or "/" in spec


def importable_module(spec: str, *, what: str) -> tuple[str, list[str]]:
    """The dotted module name of ``spec`` (a module, or a ``.py`` file made importable now).

    Returns the name and the folders added to ``sys.path`` (a child process needs them
    on its ``PYTHONPATH``); errors name ``what``.
    """
    if not is_file_spec(spec):
        return spec, []
    path = Path(spec).resolve()
    if not path.is_file():
        raise ImportPathError(f"{what}: no such file {spec}")
    root, module = _module_of_file(path)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    return module, [str(root)]


def importable_path(path: str, *, what: str) -> tuple[str, list[str]]:
    """``module:attribute`` for ``path`` (that, or ``file.py:attribute``) and the folders added."""
    spec, sep, attr = path.rpartition(":")
    if not sep or not spec or not attr:
        return path, []  # left for the resolver to refuse, with its own message
    module, extra = importable_module(spec, what=what)
    return f"{module}:{attr}", extra


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
