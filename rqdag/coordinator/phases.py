"""A task's phases, what applying a result did, and the attempts the state machine hands out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rqdag.shared.model.task import Task


class Phase(StrEnum):
    """Where a task stands inside the state machine."""

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    DONE = "done"


class Outcome(StrEnum):
    """What :meth:`TaskStateManager.complete` did with a result."""

    DONE = "done"
    RETRY = "retry"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One attempt of a task that the executor must hand to a dispatcher."""

    task: Task
    attempt: int
    token: str
    inputs: dict[str, Any]
    deadline: float | None
