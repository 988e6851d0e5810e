"""ServerClock: Redis's clock for the watchdogs of many runs, read once for all of them.

A watchdog holds a heartbeat's silence against its worker in Redis's time (the
scripts stamp heartbeats with Redis TIME), and only since Redis last came back:
when the server started (a restart) or after a call that stalled. Each run's
watchdog used to read TIME, and INFO once, itself: thousands of runs on one loop
made that a round trip per run and check. A clock shared by a loop's runs reads
both in one pipeline at most every REFRESH_S and in between adds the monotonic
time gone by; a Redis error seen by the loop makes the next check read afresh,
so a reading from before a restart is never used after it.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import redis

REFRESH_S = 0.25
STALL_S = 1.0  # a call to Redis this much slower than it should be: Redis was unreachable meanwhile
UPTIME_GRAIN_S = 1.0


class Reading(NamedTuple):
    """Redis's time now, and the Redis time since which a silence counts against a worker."""

    server_now: float
    since: float


class ServerClock:
    """One thread's view of Redis's clock (not thread-safe: one per driver loop or run)."""

    def __init__(self, client: redis.Redis, refresh_s: float = REFRESH_S) -> None:
        self._client = client
        self._refresh_s = refresh_s
        self._read_at: float | None = None  # monotonic time of the last reading
        self._server_at = 0.0  # Redis TIME then
        self._since = 0.0
        self._info_allowed = True

    def read(self) -> Reading:
        """Redis's time now (read from Redis when the last reading is older than the refresh)."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self._refresh_s:
            self._refresh(now)
            now = time.monotonic()
        assert self._read_at is not None
        return Reading(self._server_at + (now - self._read_at), self._since)

    def forget(self) -> None:
        """A call to Redis failed: the next reading is taken from Redis."""
        self._read_at = None

    def _refresh(self, before: float) -> None:
        with self._client.pipeline(transaction=False) as pipe:
            pipe.time()
            if self._info_allowed:
                pipe.info("server")
            replies = pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        seconds, micros = replies[0]
        server_now = seconds + micros / 1e6
        started = self._started(server_now, replies[1] if self._info_allowed else None)
        if time.monotonic() - before > STALL_S:  # this read stalled: Redis was away just now
            started = server_now
        # INFO's uptime is whole seconds: a start that moves by less is the same start
        if started > self._since + UPTIME_GRAIN_S:
            self._since = started
        self._server_at, self._read_at = server_now, time.monotonic()

    def _started(self, server_now: float, info: object) -> float:
        """When the server started, from INFO's uptime; from the first reading when INFO is refused."""
        if isinstance(info, dict):
            return server_now - float(info.get("uptime_in_seconds", 0))
        if isinstance(info, redis.ResponseError):  # not allowed to this user
            self._info_allowed = False
        elif isinstance(info, Exception):
            raise info
        return self._since or server_now
