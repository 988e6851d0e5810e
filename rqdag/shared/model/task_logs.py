"""What a task wrote (``logging``, stdout, stderr), one line of a run's logs stream, and its limits.

A worker captures each attempt's output into the run's logs stream
(``rqdag:run:{R}:logs``): at most :attr:`LogLimits.attempt_lines` lines and
:attr:`LogLimits.attempt_bytes` bytes per attempt (past either, one line of
stream ``truncated`` says so and the rest of the attempt's output is dropped),
and about :attr:`LogLimits.run_lines` lines per run (the oldest are trimmed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rqdag.errors import RqdagError
from rqdag.shared.model.vocabulary import LogStream

DEFAULT_ATTEMPT_LINES = 1_000
DEFAULT_ATTEMPT_BYTES = 256 * 1024
DEFAULT_RUN_LINES = 100_000

# The Redis fields of one line, in the order the append_logs script takes them.
LINE_FIELDS = ("task", "attempt", "at", "stream", "level", "logger", "message")


@dataclass(frozen=True)
class LogLimits:
    """How much of its tasks' output a worker keeps; ``attempt_lines=0`` captures nothing."""

    attempt_lines: int = DEFAULT_ATTEMPT_LINES
    attempt_bytes: int = DEFAULT_ATTEMPT_BYTES
    run_lines: int = DEFAULT_RUN_LINES

    def __post_init__(self) -> None:
        for name in ("attempt_lines", "attempt_bytes", "run_lines"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RqdagError(f"log limit {name} must be an integer >= 0, got {value!r}")
        if self.enabled and (self.attempt_bytes == 0 or self.run_lines == 0):
            raise RqdagError("log limit attempt_bytes and run_lines must be > 0 while lines are captured")

    @property
    def enabled(self) -> bool:
        """True when the worker captures its tasks' output."""
        return self.attempt_lines > 0


@dataclass(frozen=True)
class LogLine:
    """One line a task wrote: a ``logging`` record, a line of stdout or stderr, or a truncation mark."""

    task: str
    attempt: int
    at: float
    stream: LogStream
    message: str
    level: str | None = None  # logging records only: info, warning, ...
    logger: str | None = None  # logging records only: the logger's name
    id: str | None = None  # the stream entry id, once stored

    @property
    def truncated(self) -> bool:
        """True for the mark that says the rest of the attempt's output was dropped."""
        return self.stream is LogStream.TRUNCATED

    def values(self) -> tuple[str, str, str, str, str, str, str]:
        """The line's Redis field values, in :data:`LINE_FIELDS` order."""
        return (
            self.task,
            str(self.attempt),
            repr(self.at),
            self.stream.value,
            self.level or "",
            self.logger or "",
            self.message,
        )

    def to_dict(self, run_id: str) -> dict[str, Any]:
        """JSON form (``rqdag logs --json``, see docs/json.md)."""
        return {
            "run_id": run_id,
            "task": self.task,
            "attempt": self.attempt,
            "at": self.at,
            "stream": self.stream.value,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "id": self.id,
        }

    @classmethod
    def from_fields(cls, entry_id: str, fields: dict[str, str]) -> LogLine:
        """A line read back from the stream; a field it lacks reads as empty (never raises)."""
        try:
            stream = LogStream(fields.get("stream", ""))
        except ValueError:
            stream = LogStream.STDOUT
        return cls(
            task=fields.get("task", ""),
            attempt=_int(fields.get("attempt")),
            at=_float(fields.get("at")),
            stream=stream,
            message=fields.get("message", ""),
            level=fields.get("level") or None,
            logger=fields.get("logger") or None,
            id=entry_id,
        )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0
