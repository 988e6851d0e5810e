"""What a driver loop tells its coordinator service (the service's callbacks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from rqdag.coordinator.driver import RunDriver
    from rqdag.coordinator.multiplex import DriverLoop


@dataclass
class LoopHooks:
    """What a loop tells its service: a run ended here (its status, or None: it left it)
    or failed (the exception), and that a shared read failed or went through."""

    ended: Callable[[RunDriver], None]
    failed: Callable[[str, Exception], None]
    redis_failed: Callable[[redis.RedisError], None]
    # a run was submitted: a driver of it for this loop, or None (driven here already, or too many)
    claim: Callable[[str, DriverLoop], RunDriver | None] | None = None
