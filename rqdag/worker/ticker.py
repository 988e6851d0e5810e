"""One thread per worker process for the periodic calls of running jobs (heartbeats).

Starting and joining a thread per job cost about a millisecond a job; a ticker
that jobs register with costs nothing when idle, and a registration wakes its
thread only when it falls due before the thread would wake anyway (a slot's
job registering and cancelling its heartbeats costs no thread switch). A forked work horse gets a
fresh ticker of its own (threads do not survive a fork).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("rqdag.worker")


@dataclass
class _Entry:
    due: float
    interval: float
    call: Callable[[], object]


class Ticker:
    """Runs registered callables every ``interval`` seconds on one daemon thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._entries: dict[int, _Entry] = {}
        self._handles = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._waiting_until = 0.0  # when the thread wakes next by itself (0: it is not waiting)

    def every(self, interval: float, call: Callable[[], object]) -> int:
        """Call ``call()`` every ``interval`` seconds from now on; returns a handle for cancel()."""
        if self._pid != os.getpid():
            self._reset()  # a forked child: the parent's thread and lock state are not ours
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rqdag-ticker", daemon=True)
                self._thread.start()
            handle = next(self._handles)
            due = time.monotonic() + interval
            self._entries[handle] = _Entry(due, interval, call)
            if due < self._waiting_until or not self._waiting_until:
                self._cond.notify()  # due before the thread would wake: wake it (else it need not)
            return handle

    def cancel(self, handle: int) -> None:
        """Stop calling what ``handle`` names (a call under way finishes)."""
        with self._cond:
            self._entries.pop(handle, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [e for e in self._entries.values() if e.due <= now]
                for entry in due:
                    entry.due = now + entry.interval
                if not due:
                    upcoming = min((e.due for e in self._entries.values()), default=None)
                    self._waiting_until = float("inf") if upcoming is None else upcoming
                    self._cond.wait(None if upcoming is None else max(upcoming - now, 0.001))
                    self._waiting_until = 0.0
                    continue
            for entry in due:
                try:
                    entry.call()
                except Exception:  # a failing heartbeat must not end the others
                    log.exception("periodic call %r failed", entry.call)
