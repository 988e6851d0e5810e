"""A run's outcome from its tasks' results."""

from __future__ import annotations

from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import RunStatus, TaskStatus


def run_status(results: dict[str, TaskResult], *, cancelled: bool) -> RunStatus:
    """The run's outcome from its results."""
    if cancelled or any(r.status is TaskStatus.CANCELLED for r in results.values()):
        return RunStatus.CANCELLED
    if all(r.status is TaskStatus.SUCCESS for r in results.values()):
        return RunStatus.SUCCEEDED
    return RunStatus.FAILED
