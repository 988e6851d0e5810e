"""The columns of :class:`~rqdag.coordinator.state.TaskStateManager`, declared once for its mixins."""

from __future__ import annotations

import threading

from rqdag.coordinator.phases import Phase
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task_table import TaskTable


class StateColumns:
    """What the state's mixins read and write: a task's phase, attempt, token and deadline by
    index, the results by name, the ready and retry heaps, all under one lock."""

    _table: TaskTable
    _names: list[str]
    _index: dict[str, int]
    _deps: list[list[int]]
    _lock: threading.RLock
    _phase: list[Phase]
    _attempt: list[int]
    _token: dict[int, str]
    _deadline: dict[int, float]
    _results: dict[str, TaskResult]
    _held: dict[str, TaskResult]
    _ready: list[tuple[int, int]]
    _retries: list[tuple[float, int]]
    _newly_done: list[str]
    _unfinished: int
    _in_doubt: set[str]
