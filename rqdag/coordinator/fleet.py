"""SharedFleet: one read of the worker registry serves every run a coordinator drives.

Each run's :class:`.routing.Router` keeps its own view of the live workers and
reads it again when it is stale, or at once when a job has no capable worker in
it. A coordinator driving thousands of small runs would read the registry for
nearly every dispatch; given a SharedFleet, the routers share one read made at
most ``max_age_s`` ago (the held-attempt recheck interval, so a worker that just
registered is seen as soon as a router alone would see it, give or take that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import redis

from rqdag.coordinator.routing import HELD_RECHECK_S
from rqdag.shared.store.workers import Fleet, read_fleet

FleetReader = Callable[[redis.Redis, Mapping[str, frozenset[str]]], Fleet]


class SharedFleet:
    """A :data:`FleetReader` that reads the registry at most once per ``max_age_s`` (thread-safe)."""

    def __init__(self, max_age_s: float = HELD_RECHECK_S, read: FleetReader = read_fleet) -> None:
        self._max_age_s = max_age_s
        self._read = read
        self._lock = threading.Lock()
        self._fleet = Fleet()
        self._read_at = float("-inf")
        self.reads = 0

    def __call__(self, client: redis.Redis, known: Mapping[str, frozenset[str]]) -> Fleet:
        """The fleet as read at most ``max_age_s`` ago (profiles known to either side kept)."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self._max_age_s:
                self._fleet = self._read(client, {**known, **self._fleet.functions})
                self._read_at = now
                self.reads += 1
            return self._fleet
