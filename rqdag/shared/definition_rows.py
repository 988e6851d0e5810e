"""The task rows of a stored definition (format 2), checked by index before any Task is built.

A row is ``[name, profile, [dependency indexes]]``. Checking indexes (in range,
not the task itself, not twice, no cycle) is what lets a coordinator load a run
of 100,000 tasks in a fraction of a second; the errors still name the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rqdag.errors import DecodeError, WorkflowDefinitionError
from rqdag.shared.graph import count_down, find_cycle
from rqdag.shared.model import Task
from rqdag.shared.workflow import Workflow


def decode_rows(name: str, profiles: Sequence[Mapping[str, Any]], rows: list[Any], where: str) -> Workflow:
    """The workflow ``name`` from its rows; DecodeError names the row (and task) at fault.

    Each profile is checked once, as a Task; the tasks are then built without
    checking again what the rows and profiles have already shown to be sound.
    """
    for i, settings in enumerate(profiles):
        try:
            Task(name="profile", **settings)
        except WorkflowDefinitionError as exc:
            raise DecodeError(f"{where}: profiles[{i}]: {exc}") from None
    names, dependents, remaining = _scan(len(profiles), rows, where)
    cycle = _cycle(names, rows, dependents, remaining)
    del dependents, remaining
    if cycle:
        raise DecodeError(f"{where}: dependency cycle: " + " -> ".join(cycle))
    makers = [Task.maker(settings) for settings in profiles]
    name_of = names.__getitem__
    single: dict[int, tuple[str]] = {}  # tasks with one and the same dependency share its tuple
    tasks: dict[str, Task] = {}
    for task, (_, profile, deps) in zip(names, rows, strict=True):
        if len(deps) == 1:
            depends_on: tuple[str, ...] = single.get(deps[0]) or single.setdefault(deps[0], (names[deps[0]],))
        else:
            depends_on = tuple(map(name_of, deps))
        tasks[task] = makers[profile](task, depends_on)
    return Workflow.of_checked(name, tasks)


def _scan(profiles: int, rows: list[Any], where: str) -> tuple[list[str], list[list[int]], list[int]]:
    """Check every row in one pass: the names, each task's dependents and dependency count by index."""
    count = len(rows)
    names: list[str] = []
    seen: dict[str, int] = {}
    dependents: list[list[int]] = [[] for _ in rows]
    remaining: list[int] = []
    for i, row in enumerate(rows):
        task, deps = _row(i, row, profiles, seen, where)
        for dep in deps:
            if type(dep) is not int or not 0 <= dep < count:
                raise DecodeError(f"{where}: tasks[{i}] ('{task}'): dependency {dep!r} is not a task index")
            if dep == i:
                raise DecodeError(f"{where}: tasks[{i}]: task '{task}' depends on itself")
            dependents[dep].append(i)
        if len(deps) > 1 and len(set(deps)) != len(deps):
            raise DecodeError(f"{where}: tasks[{i}]: task '{task}' lists a dependency twice")
        names.append(task)
        remaining.append(len(deps))
    return names, dependents, remaining


def _row(i: int, row: Any, profiles: int, seen: dict[str, int], where: str) -> tuple[str, list[Any]]:
    """The name and dependency list of row ``i``, its shape, name and profile checked."""
    if type(row) is not list or len(row) != 3:
        raise DecodeError(f"{where}: tasks[{i}] must be [name, profile, [dependency indexes]]")
    task, profile, deps = row
    if type(task) is not str or not task or task.isspace():
        raise DecodeError(f"{where}: tasks[{i}]: a task name must be a non-empty string, got {task!r}")
    if seen.setdefault(task, i) != i:
        raise DecodeError(f"{where}: tasks[{i}]: duplicate task name '{task}'")
    if type(profile) is not int or not 0 <= profile < profiles:  # bool is not an index either
        raise DecodeError(f"{where}: tasks[{i}] ('{task}'): profile {profile!r} does not exist")
    if type(deps) is not list:
        raise DecodeError(f"{where}: tasks[{i}] ('{task}'): dependencies must be a list of task indexes")
    return task, deps


def _cycle(
    names: list[str], rows: list[Any], dependents: list[list[int]], remaining: list[int]
) -> list[str] | None:
    """A cycle by name, or None; Kahn's count-down first (it uses up ``remaining``),
    the path search only if it fails."""
    frontier = [i for i, left in enumerate(remaining) if left == 0]
    if count_down(frontier, remaining, dependents.__getitem__) == len(rows):
        return None
    return find_cycle({names[i]: [names[d] for d in row[2]] for i, row in enumerate(rows)})
