"""How a coordinator service takes a run's failure: back off from the run, and say why once.

A mixin of :class:`~rqdag.coordinator.service.CoordinatorService`: one line per
outage (Redis unreachable, full, refusing commands), one per run for a refusal
no retry fixes, and a growing backoff before the run is picked up again.
"""

from __future__ import annotations

import logging
import time

import redis

from rqdag.coordinator.progress import is_busy
from rqdag.shared import metrics
from rqdag.shared.episodes import Episode, describe
from rqdag.shared.redis_memory import is_out_of_memory
from rqdag.shared.store.acl import explain_refusal
from rqdag.shared.store.driving import is_refusal
from rqdag.shared.store.permissions import coordinator_needs
from rqdag.shared.store.runs import RunStore

log = logging.getLogger("rqdag.coordinator")

MAX_BACKOFF_S = 60.0
# A full Redis refuses a restarted driver's first write (its lease) at once, so trying
# often costs little, and a run goes on within seconds of memory being freed.
OUT_OF_MEMORY_MAX_BACKOFF_S = 5.0


class RunFailures:
    """The service's handling of a run whose driver failed, and of Redis failures."""

    owner: str
    _client: redis.Redis
    _store: RunStore
    _backoff: dict[str, tuple[int, float]]
    _unreachable: Episode
    _refusing: Episode
    _out_of_memory: Episode

    def _classify(self, run_id: str, exc: Exception) -> None:
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            delay = self._fail(run_id)
            self._redis_failed(exc)  # the outage is logged once for all runs, not once per run
            log.debug("run '%s': driver stopped (%s); picked up again in %.0fs", run_id, describe(exc), delay)
        elif isinstance(exc, redis.RedisError):
            self._redis_error(run_id, exc)
        else:  # one broken run must not take the service down, nor spin
            delay = self._fail(run_id)
            log.error("run '%s': coordinator error; picked up again in %.0fs", run_id, delay, exc_info=exc)

    def _redis_error(self, run_id: str, exc: redis.RedisError) -> None:
        if is_out_of_memory(exc):  # logged once for all runs, like an outage
            delay = self._fail(run_id, cap_s=OUT_OF_MEMORY_MAX_BACKOFF_S)
            self._redis_failed(exc)
            log.debug("run '%s': driver stopped (%s); picked up again in %.0fs", run_id, exc, delay)
            return
        delay = self._fail(run_id)
        if is_busy(exc):  # a long script runs: it passes, like an outage (logged once for all runs)
            self._redis_failed(exc)
            log.debug("run '%s': Redis busy (%s); picked up again in %.0fs", run_id, describe(exc), delay)
            return
        if is_refusal(exc):  # no retry fixes it: say why, on the run where status shows it
            reason = explain_refusal(self._client, exc, coordinator_needs(), role="a coordinator")
            self._store.note_refusal(run_id, f"coordinator {self.owner} cannot drive it: {reason}")
            log.error("run '%s': %s; tried again in %.0fs", run_id, reason, delay)
            return
        log.warning("run '%s': Redis error (%s); picked up again in %.0fs", run_id, exc, delay)

    def _redis_failed(self, exc: redis.RedisError) -> None:
        """Log a Redis failure once per episode: unreachable, full, or refusing commands (BUSY...)."""
        metrics.redis_error(error_code(exc) if not is_out_of_memory(exc) else "OOM")
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            self._unreachable.seen(exc, kind=type(exc).__name__)
        elif is_out_of_memory(exc):
            self._out_of_memory.seen(exc, kind="OOM")
        else:
            self._refusing.seen(exc, kind=error_code(exc))

    def _fail(self, run_id: str, *, cap_s: float = MAX_BACKOFF_S) -> float:
        """Back off from a run that keeps failing: 1, 2, 4... up to ``cap_s`` seconds."""
        failures = self._backoff.get(run_id, (0, 0.0))[0] + 1
        delay = min(2.0 ** (failures - 1), cap_s)
        self._backoff[run_id] = (failures, time.monotonic() + delay)
        return delay


def error_code(exc: redis.RedisError) -> str:
    """The error's kind: its type, or for a reply redis-py has no type for, its code (``BUSY``...)."""
    words = str(exc).split(maxsplit=1)
    if type(exc) is redis.ResponseError and words and words[0].isupper():
        return words[0]
    return type(exc).__name__
