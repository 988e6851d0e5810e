"""The threads of a concurrent worker's slots: a fixed set fed through one queue.

A job handed to a slot is one ``put`` on a :class:`queue.SimpleQueue`: no
future, no condition and no work item per job, as a ``ThreadPoolExecutor``
builds for every submission (a no-op task's slot pays for each). The caller
bounds what it hands out (the worker's free-slot semaphore), so a job never
waits in the queue for long.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("rqdag.worker")

_STOP = None  # what tells a slot thread to leave


class SlotThreads:
    """``count`` threads, each running the calls handed to :meth:`submit` one after the other."""

    def __init__(self, count: int, name: str) -> None:
        """Start the threads (named ``name_0``, ``name_1``, ...)."""
        self._inbox: queue.SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]] | None]
        self._inbox = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}_{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[..., object], *args: Any) -> None:
        """Run ``call(*args)`` on the next free thread."""
        self._inbox.put((call, args))

    def shutdown(self) -> None:
        """Let every thread finish what it was given, then leave; wait for them."""
        for _ in self._threads:
            self._inbox.put(_STOP)
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._inbox.get()
            if item is _STOP:
                return
            call, args = item
            try:
                call(*args)
            except Exception:  # the caller handles its errors; a slot outlives anything left
                log.exception("slot thread: %r failed", call)
