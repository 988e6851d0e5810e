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

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token

import redis

from rqdag.shared.model.task_logs import LogLimits, LogLine
from rqdag.shared.model.vocabulary import LogStream
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.logs import AppendLogs
from rqdag.worker.capture_hooks import CURRENT, OutputSink, install_hooks, uninstall_hooks
from rqdag.worker.ticker import Ticker

__all__ = ["AttemptLog", "LogShipper", "install_hooks", "uninstall_hooks"]

log = logging.getLogger("rqdag.worker")

SHIP_INTERVAL_S = 0.1

_FORMATTER = logging.Formatter()


class AttemptLog:
    """The buffer of one attempt's output, kept within its limits; thread-safe.

    ``on_first_line`` is called once, outside the lock, when the attempt first
    writes (the shipper starts its periodic shipments then: a task that writes
    nothing costs no timer). Nothing is taken once the log is closed.
    """

    def __init__(
        self,
        run_id: str,
        task: str,
        attempt: int,
        limits: LogLimits,
        on_first_line: Callable[[], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self.task = task
        self.attempt = attempt
        self.limits = limits
        self._on_first_line = on_first_line
        self._wrote = False
        self._closed = False
        # reentrant: a signal handler's log line (SIGTERM's) may come while the task's write holds it
        self._lock = threading.RLock()
        self._pending: list[LogLine] = []
        self._partial: dict[LogStream, str] = {}
        self._lines = 0
        self._bytes = 0
        self._full = False

    def write(self, stream: LogStream, text: str) -> None:
        """Text written to stdout or stderr: each complete line becomes one line of the log."""
        with self._lock:
            if self._closed:
                return
            *complete, rest = (self._partial.pop(stream, "") + text).split("\n")
            for line in complete:
                self._add(stream, line.removesuffix("\r"))
            if len(rest) > self.limits.attempt_bytes:
                self._add(stream, rest)
            elif rest:
                self._partial[stream] = rest
            first = self._first()
        if first:
            self._started()

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
            if self._closed:
                return
            self._add(LogStream.LOG, message, record.levelname.lower(), record.name)
            first = self._first()
        if first:
            self._started()

    def close(self) -> None:
        """End the attempt's output: text left without a newline becomes its last line."""
        with self._lock:
            for stream, rest in list(self._partial.items()):
                self._add(stream, rest)
            self._partial.clear()
            self._closed = True

    def take(self) -> list[LogLine]:
        """The lines not shipped yet (the buffer is emptied)."""
        with self._lock:
            pending, self._pending = self._pending, []
            return pending

    def _first(self) -> bool:
        """True the first time the attempt writes (under the lock)."""
        if self._wrote:
            return False
        self._wrote = True
        return True

    def _started(self) -> None:
        if self._on_first_line is not None:
            self._on_first_line()

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

    def capture(self, run_id: str, task: str, attempt: int) -> AbstractContextManager[object]:
        """Capture what the calling context writes while the block runs; ship it all before leaving."""
        if not self.limits.enabled:
            return nullcontext()
        return _Capture(self, run_id, task, attempt)


class _Capture:
    """One attempt's capture: its log is current in the block; shipped every so often and at the end.

    Shipments of an attempt never overlap, so its lines keep their order.
    """

    def __init__(self, shipper: LogShipper, run_id: str, task: str, attempt: int) -> None:
        self.shipper = shipper
        self.buffer = AttemptLog(run_id, task, attempt, shipper.limits, self._first_line)
        self._handle: int | None = None
        self._token: Token[OutputSink | None] | None = None
        self._lock = threading.Lock()
        self._warned = False

    def __enter__(self) -> _Capture:
        install_hooks()
        self._token = CURRENT.set(self.buffer)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            CURRENT.reset(self._token)
        self.buffer.close()
        if self._handle is not None:
            self.shipper.ticker.cancel(self._handle)
            self.ship()

    def _first_line(self) -> None:
        self._handle = self.shipper.ticker.every(SHIP_INTERVAL_S, self.ship)

    def ship(self) -> None:
        """Send the lines written since the last shipment (one pipeline); a failure is logged, not raised."""
        with self._lock:
            lines = self.buffer.take()
            if not lines:
                return
            keys = RunKeys(self.buffer.run_id)
            try:
                with self.shipper.connection.pipeline(transaction=False) as pipe:
                    self.shipper.script.queue(
                        pipe, keys, lines=lines, run_lines=self.shipper.limits.run_lines
                    )
                    pipe.execute()
            except (redis.RedisError, OSError) as exc:
                self._warn(len(lines), exc)

    def _warn(self, count: int, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "run %r, task %r, attempt %d: %d lines of its output were not stored: %s",
                self.buffer.run_id,
                self.buffer.task,
                self.buffer.attempt,
                count,
                exc,
            )
