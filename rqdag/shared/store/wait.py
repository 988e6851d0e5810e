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

log = logging.getLogger("rqdag")

FIRST_DELAY_S = 0.25
MAX_DELAY_S = 10.0


def wait_for_redis(
    client: redis.Redis,
    *,
    where: str,
    limit_s: float | None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """PING until Redis answers; returns the seconds waited.

    Between tries the pause doubles from FIRST_DELAY_S up to MAX_DELAY_S, and each
    failed try is logged. ``limit_s=None`` waits for as long as it takes; once
    ``limit_s`` seconds have passed (at the first failure for 0) it raises
    RqdagError naming ``where`` (the redacted URL) and the last error. Refused
    credentials are raised at once: no wait fixes them.
    """
    started = clock()
    deadline = None if limit_s is None else started + limit_s
    delay = FIRST_DELAY_S
    tries = 0
    while True:
        tries += 1
        try:
            client.ping()
        except redis.AuthenticationError:
            raise
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            reason = " ".join(str(exc).split())
            now = clock()
            if deadline is not None and now >= deadline:
                raise RqdagError(_gave_up(where, reason, limit_s or 0.0)) from None
            pause = delay if deadline is None else min(delay, deadline - now)
            bound = "no limit" if limit_s is None else f"limit {limit_s:g}s"
            log.warning(
                "Redis at %s is unreachable (%s); trying again in %.2gs (waiting for it, %s)",
                where,
                reason,
                pause,
                bound,
            )
            sleep(pause)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        waited = clock() - started
        if tries > 1:
            log.info("Redis at %s answered after %.1fs", where, waited)
        return waited


def _gave_up(where: str, reason: str, limit_s: float) -> str:
    if limit_s <= 0:
        return f"cannot reach Redis at {where}: {reason}"
    return f"cannot reach Redis at {where}: {reason} (still unreachable after waiting {limit_s:g}s)"
