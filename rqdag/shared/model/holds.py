"""Waits and sleeps: tasks that no worker runs; a signal or a timer completes them.

Their ``func`` is :func:`held`, a stand-in that names what went wrong if something
ever calls it (the coordinator never dispatches them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.vocabulary import TaskKind

if TYPE_CHECKING:
    from rqdag.shared.model.task import Task

HELD_FUNC = "rqdag.shared.model.holds:held"


def held(ctx: Any) -> None:
    """The ``func`` of a wait or a sleep: it never runs on a worker."""
    raise WorkflowDefinitionError(
        f"task '{getattr(ctx, 'task', '?')}' is a wait or a sleep: the coordinator completes it, "
        "no worker runs it"
    )


def check_hold_settings(task: Task) -> None:
    """The settings of a wait or sleep (``kind``, ``seconds``); raises WorkflowDefinitionError."""
    try:
        kind = TaskKind(task.kind)
    except ValueError:
        known = ", ".join(k.value for k in TaskKind)
        raise WorkflowDefinitionError(
            f"task '{task.name}': kind must be one of {known}, got {task.kind!r}"
        ) from None
    object.__setattr__(task, "kind", kind)
    if kind is TaskKind.SLEEP:
        seconds = task.seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise WorkflowDefinitionError(f"task '{task.name}': a sleep needs seconds >= 0, got {seconds!r}")
    elif task.seconds is not None:
        raise WorkflowDefinitionError(f"task '{task.name}': only a sleep takes seconds, got {task.seconds!r}")
    if kind is not TaskKind.TASK and (task.retry.attempts or task.at_most_once or task.condition is not None):
        raise WorkflowDefinitionError(
            f"task '{task.name}': a {kind.value} takes no retry, condition or at_most_once"
        )


def hold_parts(task: Task) -> list[str]:
    """What a wait or sleep adds to its definition hash (nothing for a plain task)."""
    if task.kind is TaskKind.TASK:
        return []
    return [task.kind.value, repr(task.seconds)]


def is_held(task: Task) -> bool:
    """True for a wait or a sleep: the coordinator completes it, no worker runs it."""
    return task.kind is not TaskKind.TASK
