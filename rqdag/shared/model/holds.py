"""Waits and sleeps: tasks that no worker runs; a signal or a timer completes them.

Their ``func`` is :func:`held`, a stand-in that names what went wrong if something
ever calls it (the coordinator never dispatches them).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.vocabulary import TaskKind

if TYPE_CHECKING:
    from rqdag.shared.model.task import Task

HELD_FUNC = "rqdag.shared.model.holds:held"
CHILD_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PARAMS_SUFFIX = ".params"  # the task that runs a subflow's function: it returns the child's params


def params_task(subflow: str) -> str:
    """The name of the task that computes the params of subflow ``subflow``'s child run."""
    return f"{subflow}{PARAMS_SUFFIX}"


def child_run_id(run_id: str, subflow: str) -> str:
    """The id of the child run of subflow ``subflow`` of run ``run_id``: derived, so starting it
    is idempotent."""
    return f"{run_id}.{subflow}"


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
    if (kind is TaskKind.SUBFLOW) != (task.subflow is not None):
        raise WorkflowDefinitionError(
            f"task '{task.name}': a subflow, and only a subflow, names a child workflow"
        )
    if kind is TaskKind.SUBFLOW and not CHILD_NAME.match(task.name):
        raise WorkflowDefinitionError(
            f"task '{task.name}': a subflow's name is part of its child run's id: "
            "use letters, digits, '_', '.', ':' or '-'"
        )
    if kind is not TaskKind.TASK and (task.retry.attempts or task.at_most_once or task.condition is not None):
        raise WorkflowDefinitionError(
            f"task '{task.name}': a {kind.value} takes no retry, condition or at_most_once"
        )


def hold_parts(task: Task) -> list[str]:
    """What a wait or sleep adds to its definition hash (nothing for a plain task)."""
    if task.kind is TaskKind.TASK:
        return []
    parts = [task.kind.value, repr(task.seconds)]
    if task.subflow is not None:
        child = task.subflow
        parts += [child.name, *sorted(f"{n}={h}" for n, h in child.definition_hashes().items())]
    return parts


def is_held(task: Task) -> bool:
    """True for a wait or a sleep: the coordinator completes it, no worker runs it."""
    return task.kind is not TaskKind.TASK
