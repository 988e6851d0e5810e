"""The task rows of a stored definition (format 2), checked by index before any Task is built.

A row is ``[name, profile, [dependency indexes]]``. Checking indexes (in range,
not the task itself, not twice, no cycle) is what lets a coordinator load a run
of 100,000 tasks in a fraction of a second; the errors still name the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rqdag.errors import DecodeError, WorkflowDefinitionError
from rqdag.shared.graph import find_cycle
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
    names = _names(profiles, rows, where)
    dependents = _dependents(names, rows, where)
    cycle = _cycle(names, rows, dependents)
    del dependents
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


def _names(profiles: Sequence[Mapping[str, Any]], rows: list[Any], where: str) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    count = len(profiles)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 3:
            raise DecodeError(f"{where}: tasks[{i}] must be [name, profile, [dependency indexes]]")
        task, profile, deps = row
        if type(task) is not str or not task or task.isspace():
            raise DecodeError(f"{where}: tasks[{i}]: a task name must be a non-empty string, got {task!r}")
        if seen.setdefault(task, i) != i:
            raise DecodeError(f"{where}: tasks[{i}]: duplicate task name '{task}'")
        if type(profile) is not int or not 0 <= profile < count:
            raise DecodeError(f"{where}: tasks[{i}] ('{task}'): profile {profile!r} does not exist")
        if not isinstance(deps, list):
            raise DecodeError(f"{where}: tasks[{i}] ('{task}'): dependencies must be a list of task indexes")
        names.append(task)
    return names


def _dependents(names: list[str], rows: list[Any], where: str) -> list[list[int]]:
    """Each task's dependents by index, checking every dependency index on the way."""
    count = len(rows)
    dependents: list[list[int]] = [[] for _ in rows]
    for i, row in enumerate(rows):
        deps = row[2]
        for dep in deps:
            if type(dep) is not int or not 0 <= dep < count:  # bool is not an index either
                raise DecodeError(
                    f"{where}: tasks[{i}] ('{names[i]}'): dependency {dep!r} is not a task index"
                )
            if dep == i:
                raise DecodeError(f"{where}: tasks[{i}]: task '{names[i]}' depends on itself")
            dependents[dep].append(i)
        if len(deps) > 1 and len(set(deps)) != len(deps):
            raise DecodeError(f"{where}: tasks[{i}]: task '{names[i]}' lists a dependency twice")
    return dependents


def _cycle(names: list[str], rows: list[Any], dependents: list[list[int]]) -> list[str] | None:
    """A cycle by name, or None; Kahn's count-down first, the path search only if it fails."""
    remaining = [len(row[2]) for row in rows]
    frontier = [i for i, left in enumerate(remaining) if left == 0]
    done = 0
    while frontier:
        node = frontier.pop()
        done += 1
        for child in dependents[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                frontier.append(child)
    if done == len(rows):
        return None
    return find_cycle({names[i]: [names[d] for d in row[2]] for i, row in enumerate(rows)})
