"""The two hooks of the capture (:mod:`rqdag.worker.capture`), installed once per process.

- ``sys.stdout`` and ``sys.stderr`` become proxies: every write goes on to the
  real stream, and a write from a context with a current attempt log also goes
  to that log;
- a handler on the root logger hands such a context's ``logging`` records to it.

:data:`CURRENT` is that context variable; the capture sets it around a task call.
"""

from __future__ import annotations

import io
import logging
import sys
from contextvars import ContextVar
from typing import Protocol, TextIO, cast

from rqdag.shared.model.vocabulary import LogStream


class OutputSink(Protocol):
    """What the hooks hand writes to: an attempt's log."""

    def write(self, stream: LogStream, text: str) -> None:
        """Text written to stdout or stderr."""

    def record(self, record: logging.LogRecord) -> None:
        """A ``logging`` record."""


CURRENT: ContextVar[OutputSink | None] = ContextVar("rqdag_attempt_log", default=None)


class _StreamProxy(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr``: every write goes to the real stream; a task's also to its log."""

    def __init__(self, original: TextIO, stream: LogStream) -> None:
        super().__init__()
        self.original = original
        self.stream = stream

    def write(self, text: str) -> int:
        """Write to the real stream, and to the current attempt's log if any."""
        current = CURRENT.get()
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
        current = CURRENT.get()
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
