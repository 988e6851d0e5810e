"""A worker's life across Redis outages and a full Redis: built again and restarted until asked to stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import redis

from rqdag.shared import metrics
from rqdag.shared.episodes import Episode
from rqdag.shared.redis_memory import is_out_of_memory, memory_episode

log = logging.getLogger("rqdag.worker")

RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0
FULL_REDIS_MAX_S = 5.0  # a full Redis refuses at once: trying often is cheap
FULL = "Redis is full"  # the reason of a worker stopped by a full Redis (said by its episode)


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

    def registered_summary(self) -> str: ...

    @property
    def redis_memory(self) -> Episode: ...

    @redis_memory.setter
    def redis_memory(self, episode: Episode) -> None: ...


def work_until_stopped(make: Callable[[], Worker], *, burst: bool, log_level: str) -> None:
    """Run workers one after the other until one is asked to stop.

    RQ retries a lost connection only while it waits for a job; anywhere else it
    quits. Here the worker is built again and goes on once Redis answers, after
    a pause that doubles up to RECONNECT_MAX_S (logged each time). A full Redis
    (say, at the worker's birth) is waited out the same way, at most
    FULL_REDIS_MAX_S apart, and said once per episode.
    """
    stopping = threading.Event()
    delay = RECONNECT_FIRST_S
    incarnation = 0
    memory = memory_episode(log)  # one for the process: a worker built again goes on with it
    while True:
        reason = _work_once(make, memory, incarnation, burst=burst, log_level=log_level)
        if reason is None:
            return
        incarnation += 1
        if reason == FULL:
            delay = min(delay, FULL_REDIS_MAX_S)
            log.debug("rqdag worker: Redis is full; starting again in %.1fs", delay)
        else:
            log.warning("rqdag worker %s; starting again in %.1fs", reason, delay)
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            if stopping.wait(delay):
                return
        finally:
            signal.signal(signal.SIGTERM, previous)
        delay = min(delay * 2, RECONNECT_MAX_S)


def _work_once(
    make: Callable[[], Worker], memory: Episode, incarnation: int, *, burst: bool, log_level: str
) -> str | None:
    """Build a worker and run it; why it must be built again, or None when it is done."""
    worker: Worker | None = None
    try:
        worker = make()
        worker.redis_memory = memory
        if incarnation:
            metrics.redis_reconnected(True)
            # our own registration, left behind when Redis went away under the last one
            worker.connection.delete(worker.key)
        else:
            log.info("rqdag worker %s: %s", worker.name, worker.registered_summary())
        worker.work(burst=burst, logging_level=log_level, with_scheduler=False)
        reason = None if burst else "stopped on an unexpected error"
    except redis.ConnectionError as exc:
        metrics.redis_error(type(exc).__name__)
        reason = f"lost Redis ({exc})"
    except redis.ResponseError as exc:
        if not is_out_of_memory(exc):
            raise
        memory.seen(exc, kind="OOM")
        reason = FULL
    if worker is not None and worker._shutdown_requested_date is not None:
        return None
    return reason
