"""Mapped tasks: a task that runs once per item of its source's list (pure, no I/O).

A mapped task ``load[KEY]`` has one child per item of the list its source
(``map_over``) returned: ``KEY`` is ``map_key(item)`` as a string, or the item's
index without a key. Children are ordinary tasks with the mapped task's settings
and dependencies; the mapped task's own result is their aggregate
(:func:`aggregate`). Nothing here knows where the list came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import DEFAULT_MAX_ITEMS, Task
from rqdag.shared.model.vocabulary import TaskStatus

KeyFunction = Callable[[Any], Any]
MAX_KEY_CHARS = 200


@dataclass(frozen=True, slots=True)
class Expansion:
    """The children of one mapped task: their keys and items, in item order."""

    keys: list[str]
    items: list[Any]

    def names(self, mapped: str) -> list[str]:
        """The children's task names."""
        return [f"{mapped}[{key}]" for key in self.keys]


def child_name(mapped: str, key: str) -> str:
    """The task name of the child of ``mapped`` whose key is ``key``."""
    return f"{mapped}[{key}]"


def parent_of(name: str) -> str | None:
    """The mapped task a child name belongs to, or None for a plain task name."""
    cut = name.find("[")
    if cut <= 0 or not name.endswith("]"):
        return None
    return name[:cut]


def expand(task: Task, data: Any, key: KeyFunction | None) -> Expansion | str:
    """The children of ``task`` over its source's ``data``, or why there are none (a failure message).

    ``data`` that is not a list, a key that is not a string, a duplicate key, or
    more items than ``task.max_items`` make no child at all.
    """
    source = task.map_over
    if not isinstance(data, list):
        return f"map over '{source}': its data is not a list (got {type(data).__name__})"
    limit = task.max_items
    if len(data) > limit:
        return f"map over '{source}': {len(data):,} items, more than max_items ({limit:,})"
    if key is None:
        return Expansion([str(i) for i in range(len(data))], data)
    keys: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        found = _key_of(key, item, i)
        if not isinstance(found, tuple):
            return f"map over '{source}': {found}"
        value = found[0]
        first = seen.setdefault(value, i)
        if first != i:
            return f"map over '{source}': duplicate key '{value}' (items {first} and {i})"
        keys.append(value)
    return Expansion(keys, data)


def _key_of(key: KeyFunction, item: Any, i: int) -> tuple[str] | str:
    """``(KEY,)`` of one item, or what is wrong with it."""
    try:
        value = key(item)
    except Exception as exc:  # user code: its error becomes the mapped task's failure
        return f"map_key raised {type(exc).__name__}: {exc} (item {i})"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        return f"map_key returned {value!r} for item {i}: a key must be a non-empty string"
    if len(value) > MAX_KEY_CHARS:
        return f"map_key returned a key of {len(value)} characters for item {i} (at most {MAX_KEY_CHARS})"
    return (value,)


def child_maker(task: Task) -> Callable[[str, tuple[str, ...]], Task]:
    """A maker of the children of ``task``: all its settings but its map fields."""
    settings = {f.name: getattr(task, f.name) for f in fields(Task) if f.name not in _NOT_INHERITED}
    return Task.maker({**settings, "map_over": None, "map_key": None, "max_items": DEFAULT_MAX_ITEMS})


_NOT_INHERITED = frozenset({"name", "depends_on", "map_over", "map_key", "max_items"})


def aggregate(names: Sequence[str], results: Sequence[TaskResult]) -> TaskResult:
    """The mapped task's result once every child has one (``results`` in item order).

    All succeeded: ``success`` with their data as a list. Otherwise ``failure``
    naming how many did not succeed and the first of them; its ``data`` is the
    list of the successful children's data (what ``continue_on_error`` passes on).
    """
    data: list[Any] = []
    bad: list[int] = []
    for i, result in enumerate(results):
        if result.status is TaskStatus.SUCCESS:
            data.append(result.data)
        else:
            bad.append(i)
    if not bad:
        return TaskResult.success(data, message=f"{len(results)} children succeeded")
    first = results[bad[0]]
    verb = "failed" if first.status is TaskStatus.FAILURE else f"was {first.status.value}"
    why = f": {first.message}" if first.message else ""
    message = f"{len(bad)} of {len(results)} children did not succeed (first: '{names[bad[0]]}' {verb}{why})"
    return TaskResult(TaskStatus.FAILURE, message=message, data=data)
