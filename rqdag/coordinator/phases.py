"""A task's phases, what applying a result did, and the attempts the state machine hands out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskStatus


class Phase(StrEnum):
    """Where a task stands inside the state machine."""

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    MAPPED = "mapped"  # a mapped task whose children run: it is done when they all are
    DONE = "done"


# Stands for every plain success the coordinator did not load: it needs their
# status only (workers read the data they pass on straight from Redis).
STORED_SUCCESS = TaskResult(
    TaskStatus.SUCCESS, message="success kept in Redis (not loaded by the coordinator)"
)


class Outcome(StrEnum):
    """What :meth:`TaskStateManager.complete` did with a result."""

    DONE = "done"
    RETRY = "retry"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One attempt of a task that the executor must hand to a dispatcher.

    ``failures``: the task's failed (or lost) attempts before this one, which the
    dispatch entry keeps so that a coordinator taking the run over counts on from
    there. ``retry_of``: the token of the attempt whose reported failure this one
    retries (a worker that finishes that attempt again learns it was written).
    """

    task: Task
    attempt: int
    token: str
    inputs: dict[str, Any]
    deadline: float | None
    item: Any = None  # a mapped task's child: its item
    mapped_inputs: tuple[str, ...] = ()  # dependencies that are mapped tasks (a failure's data is passed on)
    lazy_inputs: tuple[str, ...] = ()  # a child's source: its data is read only when the task reads it
    failures: int = 0
    retry_of: str | None = None
