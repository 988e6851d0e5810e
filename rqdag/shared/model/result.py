"""Results: what a snapshot holds for each task name (TaskResult, with its attempt's TaskMetrics)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rqdag.errors import SnapshotError
from rqdag.shared.model.vocabulary import TaskStatus


@dataclass(frozen=True, slots=True)
class TaskMetrics:
    """When and where one attempt of a task ran."""

    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    attempt: int = 0
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "attempt": self.attempt,
            "worker": self.worker,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> TaskMetrics:
        """Parse the form written by :meth:`to_dict`; raises SnapshotError naming the field."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise SnapshotError(f"field 'metrics' must be an object, got {type(raw).__name__}")
        attempt = raw.get("attempt", 0)
        if not isinstance(attempt, int) or isinstance(attempt, bool):
            raise SnapshotError(f"field 'metrics.attempt' must be an integer, got {attempt!r}")
        return cls(
            started_at=_optional_number(raw, "started_at"),
            finished_at=_optional_number(raw, "finished_at"),
            duration_s=_optional_number(raw, "duration_s"),
            attempt=attempt,
            worker=_optional_str(raw, "worker", prefix="metrics."),
        )


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The terminal result of a task: what a snapshot holds for each task name."""

    status: TaskStatus
    message: str | None = None
    error: str | None = None
    data: Any = None
    metrics: TaskMetrics = field(default_factory=TaskMetrics)
    definition_hash: str | None = None
    in_doubt: bool = False  # an at-most-once attempt whose outcome is unknown: blocks dependents

    @classmethod
    def success(cls, data: Any = None, message: str | None = None) -> TaskResult:
        """A successful result carrying ``data``."""
        return cls(TaskStatus.SUCCESS, message=message, data=data)

    @classmethod
    def failure(cls, message: str, error: str | None = None) -> TaskResult:
        """A failed result with a one-line ``message`` and optional traceback text."""
        return cls(TaskStatus.FAILURE, message=message, error=error)

    @classmethod
    def skipped(cls, message: str) -> TaskResult:
        """A skipped result (a condition was false or a dependency did not succeed)."""
        return cls(TaskStatus.SKIPPED, message=message)

    @classmethod
    def cancelled(cls, message: str) -> TaskResult:
        """A cancelled result (the run was cancelled or timed out)."""
        return cls(TaskStatus.CANCELLED, message=message)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (``in_doubt`` only when true)."""
        out = {
            "status": self.status.value,
            "message": self.message,
            "error": self.error,
            "data": self.data,
            "metrics": self.metrics.to_dict(),
            "definition_hash": self.definition_hash,
        }
        if self.in_doubt:
            out["in_doubt"] = True
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> TaskResult:
        """Parse the form written by :meth:`to_dict`; raises SnapshotError naming the field."""
        if not isinstance(raw, Mapping):
            raise SnapshotError(f"a result must be an object, got {type(raw).__name__}")
        status = raw.get("status")
        try:
            parsed = TaskStatus(str(status))
        except ValueError:
            known = ", ".join(s.value for s in TaskStatus)
            raise SnapshotError(f"unknown status {status!r} (expected one of {known})") from None
        return cls(
            status=parsed,
            message=_optional_str(raw, "message"),
            error=_optional_str(raw, "error"),
            data=raw.get("data"),
            metrics=TaskMetrics.from_dict(raw.get("metrics")),
            definition_hash=_optional_str(raw, "definition_hash"),
            in_doubt=raw.get("in_doubt") is True,
        )


def _optional_str(raw: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise SnapshotError(f"field '{prefix}{key}' must be a string, got {value!r}")
    return value


def _optional_number(raw: Mapping[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SnapshotError(f"field 'metrics.{key}' must be a number, got {value!r}")
    return float(value)
