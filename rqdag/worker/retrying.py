"""Calling a worker's token-checked scripts until Redis answers, through outages.

The start and finish steps are safe to send again (each script checks the
attempt's token and state, and answers a replay of a call that was written as
it answered the call), so a worker that cannot reach Redis waits and tries
again instead of dropping what it holds: the attempt it was about to start, or
a finished result. The waits double from FIRST_DELAY_S to MAX_DELAY_S, and an
outage is logged once when it starts and once when Redis answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis
from redis.exceptions import ClusterDownError, ReadOnlyError, TryAgainError

from rqdag.shared.episodes import Episode
from rqdag.shared.redis_memory import is_out_of_memory, memory_episode

log = logging.getLogger("rqdag.worker")

T = TypeVar("T")

FIRST_DELAY_S = 0.05
MAX_DELAY_S = 1.0
# Unreachable, or there but unable to serve the call yet: loading its data (a kind of
# ConnectionError), a replica during a failover, a cluster without its master.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, ReadOnlyError, TryAgainError, ClusterDownError)


def transient(exc: redis.RedisError) -> bool:
    """True when ``exc`` says Redis could not be reached or could not serve the call for now
    (also: full, or busy running another script)."""
    if isinstance(exc, TRANSIENT) or is_out_of_memory(exc):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("BUSY")


def until_answered(
    call: Callable[[], T],
    *,
    what: str,
    extra: Mapping[str, Any] | None = None,
    give_up: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()`` until Redis answers it; any error that is not :func:`transient` is raised,
    and so is a transient one once ``give_up()`` says so.

    ``what`` names the step in the log lines (``"run 'r', task 't': finish"``).
    """
    episode = _Logged(what, extra)
    delay = FIRST_DELAY_S
    while True:
        try:
            value = call()
        except redis.RedisError as exc:
            if not transient(exc) or give_up():
                raise
            episode.seen(exc)
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        episode.over()
        return value


class _Logged:
    """The episodes of one step (a full Redis, or one that does not answer), whose lines
    carry the attempt's run, task and attempt number."""

    def __init__(self, what: str, extra: Mapping[str, Any] | None) -> None:
        adapter: Any = logging.LoggerAdapter(log, dict(extra or {}))
        self._memory = memory_episode(adapter, f"{what}: ")
        self._away = Episode(
            adapter, f"{what}: Redis does not answer; holding on and trying again", f"{what}: Redis answered"
        )

    def seen(self, exc: redis.RedisError) -> None:
        if is_out_of_memory(exc):
            self._memory.seen(exc, kind="OOM")
        else:
            self._away.seen(exc, kind=type(exc).__name__)

    def over(self) -> None:
        self._memory.over()
        self._away.over()
