"""One asyncio event loop per process, in a daemon thread, for ``async def`` tasks.

In-process runs and workers alike await every coroutine task on this loop: many
async tasks share one thread instead of a thread each. A forked process (a work
horse, a task that forks) gets a fresh loop of its own on first use: the
parent's thread does not survive a fork.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0


def event_loop() -> asyncio.AbstractEventLoop:
    """This process's task loop, started on first use."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="rqdag-asyncio", daemon=True)
            thread.start()
            _loop, _pid = loop, os.getpid()
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Schedule ``coro`` on the task loop; its result (or its cancel) through the future."""
    return asyncio.run_coroutine_threadsafe(coro, event_loop())
