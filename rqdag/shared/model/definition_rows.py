"""The task rows of a stored definition (format 2), checked by index; no Task is built here.

A row is ``[name, profile, [dependency indexes]]``. Checking indexes (in range,
not the task itself, not twice, no cycle) is what lets a coordinator load a run
of 100,000 tasks in a fraction of a second; the errors still name the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from rqdag.errors import DecodeError, WorkflowDefinitionError
from rqdag.shared.model.graph import count_down, find_cycle
from rqdag.shared.model.task import Task
from rqdag.shared.model.task_table import TaskTable


def table_of_rows(profiles: Sequence[Mapping[str, Any]], rows: list[Any], where: str) -> TaskTable:
    """The checked rows as a :class:`TaskTable`; DecodeError names the row (and task) at fault.

    Each profile is checked once, as a Task; the table makes a task's Task from
    its profile when asked, without checking again what the rows and profiles
    have already shown to be sound.
    """
    for i, settings in enumerate(profiles):
        try:
            Task(name="profile", **settings)
        except WorkflowDefinitionError as exc:
            raise DecodeError(f"{where}: profiles[{i}]: {exc}") from None
    columns = _sound_in_order(len(profiles), rows)
    if columns is None:  # something is wrong, or the rows are not in dependency order: check row by row
        names, index, dependents, remaining = _scan(len(profiles), rows, where)
        cycle = _cycle(names, rows, dependents, remaining)
        del dependents, remaining
        if cycle:
            raise DecodeError(f"{where}: dependency cycle: " + " -> ".join(cycle))
        columns = names, index, [row[1] for row in rows], [row[2] for row in rows]
    names, index, profile_of, deps = columns
    makers = [Task.maker(settings) for settings in profiles]
    priorities = [int(settings["priority"]) for settings in profiles]
    return TaskTable.of_profiles(names, index, deps, profile_of, makers, priorities)


def _sound_in_order(
    profiles: int, rows: list[Any]
) -> tuple[list[str], dict[str, int], list[int], list[list[int]]] | None:
    """Names, their index, profiles and dependencies, when every row is sound and
    depends only on rows before it (so there is no cycle).

    The same checks as :func:`_scan`, a column at a time (no Python call per row),
    plus the order; None sends the rows to :func:`_scan` and :func:`_cycle`,
    which name what is wrong, or accept a sound graph stored out of order.
    """
    if not rows:
        return [], {}, [], []
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {3}:
        return None
    names = [row[0] for row in rows]
    ids = [row[1] for row in rows]
    deps = [row[2] for row in rows]
    if set(map(type, names)) != {str} or not all(map(str.strip, names)):
        return None
    index = dict(zip(names, range(len(names)), strict=True))
    if len(index) != len(names):  # a duplicate name
        return None
    if set(map(type, ids)) != {int} or min(ids) < 0 or max(ids) >= profiles:
        return None
    if set(map(type, deps)) != {list}:
        return None
    flat = list(chain.from_iterable(deps))
    if flat and (set(map(type, flat)) != {int} or min(flat) < 0):
        return None
    if not all(not d or max(d) < i for i, d in enumerate(deps)):
        return None
    if not all(len(set(d)) == len(d) for d in deps if len(d) > 1):
        return None
    return names, index, ids, deps


def _scan(
    profiles: int, rows: list[Any], where: str
) -> tuple[list[str], dict[str, int], list[list[int]], list[int]]:
    """Check every row in one pass: the names, their index, each task's dependents and
    dependency count by index."""
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
    return names, seen, dependents, remaining  # no duplicate got past _row: seen is the index


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
