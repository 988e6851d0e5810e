"""Mapped tasks on the run page: one node per mapped task, labelled with its children's counts.

The children (``load[KEY]``) are grouped with ``rqdag status``'s own functions
(``children_by_parent``, ``children_line``); the drawing keeps only the tasks of
the definition, so a mapped task is one box however many children it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rqdag.cli.output import children_by_parent, children_line
from rqdag.shared.model.mapping import parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.store.records import DispatchEntry

PENDING = "pending"
RUNNING = "running"


def mapped_nodes(
    tasks: Mapping[str, Task],
    results: Mapping[str, TaskResult],
    dispatch: Mapping[str, DispatchEntry],
    children: Mapping[str, int],
) -> dict[str, dict[str, Any]]:
    """Mapped task -> ``{"counts", "line", "status"}``: ``97/100``, ``97/100 success, 3 running``
    and the node's colour (its own aggregate result once it has one, else its children's state)."""
    by_parent = children_by_parent(results, dispatch)
    out: dict[str, dict[str, Any]] = {}
    for name, task in tasks.items():
        if task.map_over is None:
            continue
        names = by_parent.get(name, [])
        total = children.get(name)
        line = children_line(names, results, dispatch, total) if names or total is not None else ""
        out[name] = {
            "counts": line.split(" ", 1)[0] if line else "",
            "line": line,
            "status": _status(name, names, results),
        }
    return out


def _status(name: str, names: list[str], results: Mapping[str, TaskResult]) -> str:
    """The aggregate's status, else ``running`` once any child has started, else ``pending``."""
    own = results.get(name)
    if own is not None:
        return own.status.value
    return RUNNING if names else PENDING


def drawn_rows(rows: list[dict[str, Any]], mapped: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run document's task rows that the DAG draws: all but the children of ``mapped``."""
    return [row for row in rows if parent_of(row["task"]) not in mapped]
