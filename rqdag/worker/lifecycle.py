"""A worker's life across Redis outages: built again and restarted until asked to stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import redis

log = logging.getLogger("rqdag.worker")

RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0


class Worker(Protocol):
    """What this module needs of an rqdag worker."""

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def connection(self) -> redis.Redis: ...

    @property
    def _shutdown_requested_date(self) -> datetime | None: ...  # set by RQ when a stop was asked

    def work(self, *, burst: bool, logging_level: str, with_scheduler: bool) -> bool: ...

    def registered_count(self) -> int: ...


def work_until_stopped(make: Callable[[], Worker], *, burst: bool, log_level: str) -> None:
    """Run workers one after the other until one is asked to stop.

    RQ retries a lost connection only while it waits for a job; anywhere else it
    quits. Here the worker is built again and goes on once Redis answers, after
    a pause that doubles up to RECONNECT_MAX_S (logged each time).
    """
    stopping = threading.Event()
    delay = RECONNECT_FIRST_S
    incarnation = 0
    while True:
        worker: Worker | None = None
        try:
            worker = make()
            if incarnation:
                # our own registration, left behind when Redis went away under the last one
                worker.connection.delete(worker.key)
            else:
                log.info(
                    "rqdag worker %s: %d registered task functions", worker.name, worker.registered_count()
                )
            worker.work(burst=burst, logging_level=log_level, with_scheduler=False)
            if burst or worker._shutdown_requested_date is not None:
                return
            reason = "stopped on an unexpected error"
        except redis.ConnectionError as exc:
            if worker is not None and worker._shutdown_requested_date is not None:
                return
            reason = f"lost Redis ({exc})"
        incarnation += 1
        log.warning("rqdag worker %s; starting again in %.1fs", reason, delay)
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            if stopping.wait(delay):
                return
        finally:
            signal.signal(signal.SIGTERM, previous)
        delay = min(delay * 2, RECONNECT_MAX_S)
