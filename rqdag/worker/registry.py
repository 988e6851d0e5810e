"""The functions a worker may run: those of the modules given with ``--tasks``.

A job names its task function by import path. The worker never imports a path
it reads from Redis: it looks the path up in this registry, which holds

- every function defined in each ``--tasks`` module (``obj.__module__`` is that
  module), under ``"module:qualname"``;
- the function and condition of every task of every :class:`rqdag.Workflow`
  found at module level in those modules (they may live in other modules).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

from rqdag.errors import ImportPathError, RqdagError, TaskNotAllowedError
from rqdag.shared.model.importing import resolve_path
from rqdag.shared.model.task import Task
from rqdag.shared.model.workflow import Workflow

TaskFunction = Callable[..., Any]


@dataclass(frozen=True)
class TaskRegistry:
    """Import path to function, for every function this worker is allowed to run."""

    modules: tuple[str, ...]
    functions: Mapping[str, TaskFunction]

    def __contains__(self, path: object) -> bool:
        return path in self.functions

    def __len__(self) -> int:
        return len(self.functions)

    def lookup(self, path: str) -> TaskFunction:
        """The function registered under ``path``; raises TaskNotAllowedError naming it."""
        try:
            return self.functions[path]
        except KeyError:
            modules = ", ".join(self.modules) or "none"
            raise TaskNotAllowedError(
                f"{path!r} is not a registered task on this worker (it runs only functions of "
                f"its --tasks modules: {modules}, and the tasks of workflows defined in them)"
            ) from None


def build_registry(modules: Sequence[str]) -> TaskRegistry:
    """Import each ``--tasks`` module and collect the functions it allows.

    Raises RqdagError naming the module when one cannot be imported, and
    ImportPathError naming the workflow and task when a workflow in it names a
    function that does not resolve.
    """
    if isinstance(modules, str):
        modules = (modules,)
    functions: dict[str, TaskFunction] = {}
    for name in modules:
        module = _import_tasks_module(name)
        functions.update(_module_functions(module))
        for workflow in _module_workflows(module):
            functions.update(_workflow_functions(workflow, name))
    return TaskRegistry(modules=tuple(modules), functions=MappingProxyType(functions))


def _import_tasks_module(name: str) -> ModuleType:
    if not name or ":" in name:
        raise RqdagError(f"--tasks {name!r}: give a module name such as 'myproj.tasks'")
    try:
        return importlib.import_module(name)
    except Exception as exc:  # an import runs user code; any error means "cannot start"
        raise RqdagError(f"--tasks module {name!r} cannot be imported: {type(exc).__name__}: {exc}") from exc


def _module_functions(module: ModuleType) -> Iterable[tuple[str, TaskFunction]]:
    for obj in list(vars(module).values()):
        if inspect.isfunction(obj) and obj.__module__ == module.__name__ and "<" not in obj.__qualname__:
            yield f"{module.__name__}:{obj.__qualname__}", obj


def _module_workflows(module: ModuleType) -> Iterable[Workflow]:
    return [obj for obj in list(vars(module).values()) if isinstance(obj, Workflow)]


def _workflow_functions(workflow: Workflow, module: str) -> Iterable[tuple[str, TaskFunction]]:
    for task in workflow.tasks:
        yield from _task_target(task.func, task.func_path, workflow, task, module)
        if task.condition is not None:
            yield from _task_target(task.condition, task.condition_path, workflow, task, module)


def _task_target(
    target: object, path: str | None, workflow: Workflow, task: Task, module: str
) -> Iterable[tuple[str, TaskFunction]]:
    if path is None:  # a lambda or closure: no job can name it, so nothing to allow
        return
    if callable(target):
        yield path, target
        return
    try:
        yield path, resolve_path(path, what=f"task '{task.name}' of workflow '{workflow.name}'")
    except ImportPathError as exc:
        raise ImportPathError(f"--tasks module {module!r}: {exc}") from None
