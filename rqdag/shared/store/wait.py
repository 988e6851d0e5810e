"""Waiting for Redis at start-up, so that a service started during an outage comes up with it.

``rqdag coordinator`` and ``rqdag worker`` call :func:`wait_for_redis` before
anything else: a supervisor that restarts them while Redis is down (or still
loading its data) gets a service that waits, says so in its log, and starts once
Redis answers. One-shot commands do not wait: they fail at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from rqdag.errors import RqdagError
from rqdag.shared.episodes import Episode, describe

log = logging.getLogger("rqdag")

FIRST_DELAY_S = 0.25
MAX_DELAY_S = 10.0
REMIND_EVERY_S = 60.0


def wait_for_redis(
    client: redis.Redis,
    *,
    where: str,
    limit_s: float | None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """PING until Redis answers; returns the seconds waited.

    Between tries the pause doubles from FIRST_DELAY_S up to MAX_DELAY_S. The wait
    is logged as one episode: when it starts, when the error changes, every
    REMIND_EVERY_S while it lasts, and when Redis answers. ``limit_s=None`` waits
    for as long as it takes; once ``limit_s`` seconds have passed (at the first
    failure for 0) it raises RqdagError naming ``where`` (the redacted URL) and
    the last error. Refused credentials are raised at once: no wait fixes them.
    """
    bound = "no limit" if limit_s is None else f"at most {limit_s:g}s"
    waiting = Episode(
        log,
        f"Redis at {where} is unreachable; waiting for it ({bound})",
        f"Redis at {where} answered",
        remind_every_s=REMIND_EVERY_S,
        clock=clock,
    )
    started = clock()
    deadline = None if limit_s is None else started + limit_s
    delay = FIRST_DELAY_S
    while True:
        try:
            client.ping()
        except redis.AuthenticationError:
            raise
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            now = clock()
            if deadline is not None and now >= deadline:
                raise RqdagError(_gave_up(where, describe(exc), limit_s or 0.0)) from None
            if limit_s != 0:
                waiting.seen(exc, kind=type(exc).__name__)
            sleep(delay if deadline is None else min(delay, deadline - now))
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        waiting.over()
        return clock() - started


def _gave_up(where: str, reason: str, limit_s: float) -> str:
    if limit_s <= 0:
        return f"cannot reach Redis at {where}: {reason}"
    return f"cannot reach Redis at {where}: {reason} (still unreachable after waiting {limit_s:g}s)"
