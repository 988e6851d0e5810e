"""Routing: each job goes to the capability queue of a live worker that can run it, or waits.

Every rqdag worker listens, for each queue it serves, to one RQ queue of its
own capability profile (``default.rqdag-<hash of its function set>``), and
publishes its profile in the worker registry. A job for queue ``Q`` naming
function ``F`` (and condition ``C``) is enqueued into the capability queue of a
live worker on ``Q`` whose functions include ``F`` and ``C``, chosen by the job
id among the capable workers (so load spreads in proportion to their number).
When there is none, the attempt is held: its dispatch entry says why
(``waiting``) and no job exists until such a worker registers.

The fleet is read from the registry at most every five seconds while
dispatching (two or three round trips, never per task), again at once when a
job finds no capable worker in that view, and every quarter second while an
attempt is held.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import redis

from rqdag.coordinator.dispatch import DispatchRequest
from rqdag.shared.store.keys import capability_queue
from rqdag.shared.store.workers import Fleet, WorkerInfo, read_fleet

log = logging.getLogger("rqdag.coordinator")

REFRESH_S = 5.0  # the steady-state view's age; a job with no capable worker in it reads again at once
HELD_RECHECK_S = 0.25
DUE_BATCH = 500  # held attempts sent in one dispatch step


@dataclass(frozen=True)
class Route:
    """Where a job goes: an RQ queue, or nowhere yet and why."""

    rq_queue: str | None
    waiting: str | None = None


def waiting_message(queue: str, func: str) -> str:
    """The sentence ``status``, ``watch`` and ``inspect`` show for a held attempt."""
    return f"no live worker on queue '{queue}' runs '{func}'"


class Router:
    """Chooses each job's capability queue from a cached view of the worker registry.

    It also keeps the run's held attempts (those no live worker could run when
    they were dispatched) until a worker that can run them registers.
    """

    def __init__(
        self,
        client: redis.Redis,
        run_id: str,
        *,
        read: Callable[[redis.Redis, Mapping[str, frozenset[str]]], Fleet] = read_fleet,
    ) -> None:
        self._client = client
        self._run_id = run_id
        self._read = read
        self._fleet = Fleet()
        self._read_at = float("-inf")
        self._next_held_check = 0.0
        self.held: dict[str, DispatchRequest] = {}  # task -> its held attempt

    def refresh(self, max_age_s: float = REFRESH_S) -> None:
        """Read the registry again if the view is older than ``max_age_s``."""
        now = time.monotonic()
        if now - self._read_at < max_age_s:
            return
        self._fleet = self._read(self._client, self._fleet.functions)
        self._read_at = now

    def prepare(self, requests: Sequence[DispatchRequest]) -> None:
        """Make the view fit for routing ``requests``: read again at once if one has no capable worker."""
        self.refresh()
        keys = {(r.task.queue, r.task.func_path or "", r.task.condition_path) for r in requests}
        if not all(self.capable(*key) for key in keys):
            self.refresh(HELD_RECHECK_S)  # a worker may have registered since the last read

    def place(self, request: DispatchRequest, job_id: str) -> Route:
        """The route of one attempt's job; an attempt with none is held (and logged once)."""
        task = request.task
        route = self.route(task.queue, task.func_path or "", task.condition_path, job_id)
        if route.rq_queue is None:
            if task.name not in self.held:
                log.info("run '%s': task '%s' waits: %s", self._run_id, task.name, route.waiting)
            self.held[task.name] = request
        else:
            self.held.pop(task.name, None)
        return route

    def due(self, limit: int = DUE_BATCH) -> list[DispatchRequest]:
        """Up to ``limit`` held attempts a live worker can run now (looked at every HELD_RECHECK_S).

        When more are due, the next call goes on with them at once (a batch a step).
        """
        now = time.monotonic()
        if not self.held or now < self._next_held_check:
            return []
        self._next_held_check = now + HELD_RECHECK_S
        self.refresh(HELD_RECHECK_S)
        verdicts: dict[tuple[str, str, str | None], bool] = {}  # one look per function, not per task
        out: list[DispatchRequest] = []
        for request in self.held.values():
            task = request.task
            key = (task.queue, task.func_path or "", task.condition_path)
            if key not in verdicts:
                verdicts[key] = bool(self.capable(*key))
            if verdicts[key]:
                out.append(request)
                if len(out) >= limit:
                    self._next_held_check = now  # more may be due: the next step goes on
                    break
        return out

    def drop(self, task: str, token: str) -> None:
        """Forget a held attempt that was given up on (cancelled, timed out)."""
        held = self.held.get(task)
        if held is not None and held.token == token:
            del self.held[task]

    def runnable(self, request: DispatchRequest) -> bool:
        """True when a live worker can run the attempt."""
        task = request.task
        return bool(self.capable(task.queue, task.func_path or "", task.condition_path))

    def route(self, queue: str, func: str, condition: str | None, job_id: str) -> Route:
        """The route of one job, from the current view."""
        capable = self.capable(queue, func, condition)
        if not capable:
            missing = func
            if condition is not None and self.capable(queue, func, None):
                missing = condition
            return Route(None, waiting_message(queue, missing))
        chosen = capable[zlib.crc32(job_id.encode()) % len(capable)]
        return Route(capability_queue(queue, chosen.profile))

    def capable(self, queue: str, func: str, condition: str | None) -> list[WorkerInfo]:
        """Live workers on ``queue`` that have ``func`` (and ``condition``)."""
        out: list[WorkerInfo] = []
        for worker in self._fleet.workers:
            functions = self._fleet.functions.get(worker.profile, frozenset())
            if queue in worker.queues and func in functions and (condition is None or condition in functions):
                out.append(worker)
        return out

    def listened(self, rq_queue: str) -> bool:
        """True when some live worker listens to ``rq_queue`` (from a view at most REFRESH_S old)."""
        self.refresh()
        return any(rq_queue in w.rq_queues for w in self._fleet.workers)
