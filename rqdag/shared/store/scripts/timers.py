"""The coordinator's script for the timers of waits and sleeps (Redis time, fenced)."""

from __future__ import annotations

from typing import Any

import redis
from redis.typing import EncodableT

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import ScriptWrapper, text


class HoldTimer(ScriptWrapper):
    """``hold_timer.lua``: start (or read back) the timer of a wait or a sleep, under the lease."""

    name = "hold_timer"

    def __call__(
        self,
        keys: RunKeys,
        *,
        lease: str,
        field: str,
        seconds: float,
        client: redis.Redis | None = None,
    ) -> float | None:
        """Seconds left until the timer fires (<= 0: due), by Redis time; None when the lease
        is not held (nothing written)."""
        args: list[EncodableT] = [lease, field, repr(float(seconds))]
        reply: Any = self._eval([keys.lease, keys.timers], args, client)
        if isinstance(reply, int):
            if reply < 0:
                return None
            raise self._unexpected(reply)
        try:
            fires_at, now = (float(text(v)) for v in reply)
        except (TypeError, ValueError):
            raise self._unexpected(reply) from None
        return fires_at - now
