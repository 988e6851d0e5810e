"""Capturing what a task writes (``logging``, stdout, stderr) into its run's logs stream.

Around each task call, :meth:`LogShipper.capture` makes an :class:`AttemptLog`
the current one of the task's context (a ContextVar: the task's thread, and the
asyncio tasks it starts; threads the task starts itself are not followed). Two
hooks, installed once per process, route what that context writes into it:

- a handler on the root logger takes the ``logging`` records;
- ``sys.stdout`` and ``sys.stderr`` become proxies that pass every write on to
  the real stream, as before, and also hand the writes of a task's context to
  its buffer (not file descriptor redirection: RQ's own output, the heartbeat
  thread's and every other thread's stay out).

A write only appends to a buffer in memory: the task never waits for Redis.
The buffer is shipped by the worker's ticker thread every
:data:`SHIP_INTERVAL_S`, and once more, in the job's thread, when the task
returns and before its result is reported. An attempt keeps at most its
:class:`~rqdag.shared.model.task_logs.LogLimits`; a failed shipment (a Redis
error) costs those lines and a warning, never the task.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO, cast

import redis

from rqdag.shared.model.task_logs import LogLimits, LogLine
from rqdag.shared.model.vocabulary import LogStream
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.logs import AppendLogs
from rqdag.worker.ticker import Ticker

log = logging.getLogger("rqdag.worker")

SHIP_INTERVAL_S = 0.1

_CURRENT: ContextVar[AttemptLog | None] = ContextVar("rqdag_attempt_log", default=None)
_FORMATTER = logging.Formatter()


class AttemptLog:
    """The buffer of one attempt's output, kept within its limits; thread-safe."""

    def __init__(self, run_id: str, task: str, attempt: int, limits: LogLimits) -> None:
        self.run_id = run_id
        self.task = task
        self.attempt = attempt
        self.limits = limits
        self._lock = threading.Lock()
        self._pending: list[LogLine] = []
        self._partial: dict[LogStream, str] = {}
        self._lines = 0
        self._bytes = 0
        self._full = False

    def write(self, stream: LogStream, text: str) -> None:
        """Text written to stdout or stderr: each complete line becomes one line of the log."""
        with self._lock:
            *complete, rest = (self._partial.pop(stream, "") + text).split("\n")
            for line in complete:
                self._add(stream, line.removesuffix("\r"))
            if len(rest) > self.limits.attempt_bytes:
                self._add(stream, rest)
            elif rest:
                self._partial[stream] = rest

    def record(self, record: logging.LogRecord) -> None:
        """A ``logging`` record: one line, however many lines its message has."""
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: keep what it has
            message = str(record.msg)
        if record.exc_info:
            message = f"{message}\n{_FORMATTER.formatException(record.exc_info)}"
        if record.stack_info:
            message = f"{message}\n{record.stack_info}"
        with self._lock:
            self._add(LogStream.LOG, message, record.levelname.lower(), record.name)

    def close(self) -> None:
        """End the attempt's output: text left without a newline becomes its last line."""
        with self._lock:
            for stream, rest in list(self._partial.items()):
                self._add(stream, rest)
            self._partial.clear()

    def take(self) -> list[LogLine]:
        """The lines not shipped yet (the buffer is emptied)."""
        with self._lock:
            pending, self._pending = self._pending, []
            return pending

    def _add(
        self, stream: LogStream, message: str, level: str | None = None, logger: str | None = None
    ) -> None:
        if self._full:
            return
        data = message.encode("utf-8", "replace")
        if self._lines >= self.limits.attempt_lines or self._bytes + len(data) > self.limits.attempt_bytes:
            self._full = True
            self._pending.append(
                LogLine(self.task, self.attempt, time.time(), LogStream.TRUNCATED, self._cut())
            )
            return
        self._lines += 1
        self._bytes += len(data)
        text = message if len(data) == len(message) else data.decode("utf-8")
        self._pending.append(LogLine(self.task, self.attempt, time.time(), stream, text, level, logger))

    def _cut(self) -> str:
        return (
            f"output truncated: attempt {self.attempt} wrote more than this worker keeps "
            f"({self.limits.attempt_lines:,} lines or {self.limits.attempt_bytes:,} bytes per attempt); "
            "the rest of its output is dropped"
        )


class LogShipper:
    """A worker process's capture: the hooks, and shipping each attempt's buffer to Redis."""

    def __init__(
        self, connection: redis.Redis, script: AppendLogs, limits: LogLimits, ticker: Ticker
    ) -> None:
        self.connection = connection
        self.script = script
        self.limits = limits
        self.ticker = ticker

    @contextmanager
    def capture(self, run_id: str, task: str, attempt: int) -> Iterator[None]:
        """Capture what the calling context writes while the block runs; ship it all before leaving."""
        if not self.limits.enabled:
            yield
            return
        install_hooks()
        buffer = AttemptLog(run_id, task, attempt, self.limits)
        shipment = _Shipment(self, buffer)
        handle = self.ticker.every(SHIP_INTERVAL_S, shipment.ship)
        token = _CURRENT.set(buffer)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            self.ticker.cancel(handle)
            buffer.close()
            shipment.ship()


class _Shipment:
    """Ships one attempt's buffer; shipments of an attempt never overlap, so lines keep their order."""

    def __init__(self, shipper: LogShipper, buffer: AttemptLog) -> None:
        self.shipper = shipper
        self.buffer = buffer
        self.keys = RunKeys(buffer.run_id)
        self._lock = threading.Lock()
        self._warned = False

    def ship(self) -> None:
        """Send the lines written since the last shipment (one pipeline); a failure is logged, not raised."""
        with self._lock:
            lines = self.buffer.take()
            if not lines:
                return
            try:
                with self.shipper.connection.pipeline(transaction=False) as pipe:
                    self.shipper.script.queue(
                        pipe, self.keys, lines=lines, run_lines=self.shipper.limits.run_lines
                    )
                    pipe.execute()
            except (redis.RedisError, OSError) as exc:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "run %r, task %r, attempt %d: %d lines of its output were not stored: %s",
                        self.buffer.run_id,
                        self.buffer.task,
                        self.buffer.attempt,
                        len(lines),
                        exc,
                    )


class _StreamProxy(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr``: every write goes to the real stream; a task's also to its log."""

    def __init__(self, original: TextIO, stream: LogStream) -> None:
        super().__init__()
        self.original = original
        self.stream = stream

    def write(self, text: str) -> int:
        """Write to the real stream, and to the current attempt's log if any."""
        current = _CURRENT.get()
        if current is not None and isinstance(text, str):
            current.write(self.stream, text)
        return self.original.write(text)

    def flush(self) -> None:
        """Flush the real stream."""
        self.original.flush()

    def isatty(self) -> bool:
        """Whether the real stream is a terminal."""
        return self.original.isatty()

    def fileno(self) -> int:
        """The real stream's file descriptor."""
        return self.original.fileno()

    def writable(self) -> bool:
        """Always True."""
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The real stream's encoding."""
        return self.original.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        """The real stream's error handler."""
        return self.original.errors

    @property
    def buffer(self) -> object:
        """The real stream's binary buffer (bytes written there are not captured)."""
        return self.original.buffer


class _CaptureHandler(logging.Handler):
    """On the root logger: hands the records of a task's context to its log."""

    def handle(self, record: logging.LogRecord) -> bool:
        """Take the record if a task's context emitted it (no handler lock: the log has its own)."""
        current = _CURRENT.get()
        if current is not None:
            current.record(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Unused: :meth:`handle` does the work."""


_HANDLER = _CaptureHandler()


def install_hooks() -> None:
    """Install the stdout and stderr proxies and the logging handler, unless they are in place.

    Cheap when they are; done again if something replaced them (logging set up anew, say).
    """
    if not isinstance(sys.stdout, _StreamProxy) and sys.stdout is not None:
        sys.stdout = cast(TextIO, _StreamProxy(sys.stdout, LogStream.STDOUT))
    if not isinstance(sys.stderr, _StreamProxy) and sys.stderr is not None:
        sys.stderr = cast(TextIO, _StreamProxy(sys.stderr, LogStream.STDERR))
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)


def uninstall_hooks() -> None:
    """Put back the real stdout and stderr and take the logging handler off (tests, embedding)."""
    if isinstance(sys.stdout, _StreamProxy):
        sys.stdout = sys.stdout.original
    if isinstance(sys.stderr, _StreamProxy):
        sys.stderr = sys.stderr.original
    logging.getLogger().removeHandler(_HANDLER)
