"""An RQ worker that rides out a full Redis instead of quitting.

A full Redis (``maxmemory`` under ``noeviction``) refuses every write and
answers every read. RQ's loop quits on any error but a lost connection, so each
worker would exit at its next write. Here, while Redis is full:

- the worker's own bookkeeping (its registration's heartbeat and state, the
  check for ``rq suspend``, the registries' cleaning) is skipped: the
  registration lives for minutes;
- the dequeue waits and tries again, 0.5 s doubling up to 5 s, until Redis
  takes writes again or the worker is asked to stop;
- a job whose RQ bookkeeping Redis refused does not end the loop: rqdag's
  dispatch entry, not RQ's job, says what became of the attempt, and the
  coordinator's watchdog sees to an attempt left without an answer.

The episode is logged once (:attr:`redis_memory`) and its end once the
worker's heartbeat is written again. What a full Redis does to a job itself
(its start and finish scripts) is up to the job: see :mod:`rqdag.worker.job`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from rq import worker_registration
from rq.job import Job
from rq.queue import Queue

from rqdag.shared.episodes import Episode
from rqdag.shared.redis_memory import is_out_of_memory, memory_episode
from rqdag.worker.rqheartbeat import ThrottledHeartbeat

log = logging.getLogger("rqdag.worker")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0


class RidesOutFullRedis(ThrottledHeartbeat):
    """The parts of RQ's worker loop that write, made to wait out a full Redis."""

    _redis_memory: Episode | None = None

    @property
    def redis_memory(self) -> Episode:
        """This worker's full-Redis episode (shared with the next worker the process builds)."""
        if self._redis_memory is None:
            self._redis_memory = memory_episode(log)
        return self._redis_memory

    @redis_memory.setter
    def redis_memory(self, episode: Episode) -> None:
        self._redis_memory = episode

    def _refused(self, exc: redis.ResponseError) -> None:
        """Note a full Redis; anything else Redis refused is raised again."""
        if not is_out_of_memory(exc):
            raise exc
        self.redis_memory.seen(exc, kind="OOM")

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """Refresh the registration; skipped while Redis is full, whose end it notes."""
        before = self._last_beat_at
        try:
            super().heartbeat(timeout, pipeline=pipeline)
        except redis.ResponseError as exc:
            self._refused(exc)
            return
        if self._last_beat_at != before:  # written now, not throttled nor queued on a pipeline
            self.redis_memory.over()

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Record the worker's state (kept in memory when a full Redis refuses it)."""
        try:
            super().set_state(state, pipeline=pipeline)
        except redis.ResponseError as exc:
            self._refused(exc)

    def check_for_suspension(self, burst: bool) -> None:
        """Wait while ``rq suspend`` holds; not known while Redis is full (it asks with a heartbeat)."""
        try:
            super().check_for_suspension(burst)
        except redis.ResponseError as exc:
            self._refused(exc)

    def run_maintenance_tasks(self) -> None:
        """Clean RQ's registries; left for a later round while Redis is full."""
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except redis.ResponseError as exc:
            self._refused(exc)

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        """The heartbeats of a running job (the forking worker's monitor, the simple worker's
        ticker); skipped while Redis is full, so the monitor goes on watching its horse."""
        try:
            super().maintain_heartbeats(job, execution)
        except redis.ResponseError as exc:
            self._refused(exc)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Wait for a job; while Redis is full (it refuses the blocking move), wait and try again."""
        delay = RETRY_FIRST_S
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except redis.ResponseError as exc:
                self._refused(exc)
            time.sleep(delay)  # a stop request raises out of here (RQ's signal handler)
            delay = min(delay * 2, RETRY_MAX_S)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run one job; a full Redis refusing RQ's bookkeeping of it does not end the loop."""
        try:
            super().execute_job(job, queue)
        except redis.ResponseError as exc:
            self._refused(exc)
            log.debug("worker %s: job %s: RQ's bookkeeping refused (%s)", self.name, job.id, exc)

    def register_death(self) -> None:
        """Unregister; a full Redis refuses RQ's (it writes a death date), so only delete then."""
        try:
            super().register_death()  # type: ignore[no-untyped-call]
        except redis.ResponseError as exc:
            self._refused(exc)
            # deletions outside MULTI: a full Redis takes them (in a MULTI it refuses any write)
            with self.connection.pipeline(transaction=False) as pipe:
                worker_registration.unregister(self, pipe)
                pipe.delete(self.key, self.executions_key)
                pipe.execute()
