"""What a task function receives: the TaskContext."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskContext:
    """The one argument of every task function.

    ``inputs`` maps each dependency's name to the ``data`` it returned;
    ``context`` is the user's own object (never persisted); ``idempotency_key``
    is stable for a run and task across attempts and coordinator restarts;
    ``cancelled`` is set when the task timed out or the run was cancelled;
    ``item`` is the item of a mapped task's child (None for other tasks).
    """

    run_id: str
    task: str
    attempt: int
    params: Mapping[str, Any]
    inputs: Mapping[str, Any]
    context: Any
    idempotency_key: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    item: Any = None


def idempotency_key(run_id: str, task: str) -> str:
    """The key a task passes to payment or email APIs: the same on every attempt."""
    return f"rqdag:{run_id}:{task}"
