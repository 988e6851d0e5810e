"""Finding attempts that will never report: silent workers, jobs that vanished unstarted, and
attempts whose dispatch entry was overwritten with garbage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import redis
from rq.job import Job

from rqdag.coordinator.dispatch import Completion, CompletionKind
from rqdag.coordinator.lease import Lease
from rqdag.coordinator.reconcile import lost_result
from rqdag.coordinator.server_clock import STALL_S, Reading, ServerClock
from rqdag.coordinator.unreadable import Known, UnreadableEntries, known_of
from rqdag.errors import DecodeError, LeaseLostError
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry, parse_dispatch_entry, text
from rqdag.shared.store.scripts import Scripts, VoidOutcome

log = logging.getLogger("rqdag.coordinator")

MAX_CHECK_INTERVAL_S = 5.0  # a worker with a shorter limit of its own is noticed this soon
STRANDED_GRACE_S = 2.0  # a job routed this recently waits for its workers' registration to settle


class Watchdog:
    """Checks a run's dispatch hash for attempts that are lost.

    - running, with a heartbeat older than the limit (the worker's own, if it set
      one with ``--heartbeat-timeout``, else the run's): the worker died or hangs;
      the attempt is voided and counts as a failure (``lost``);
    - queued, with its job taken from the queue by a worker (RQ's intermediate
      list, or marked started) for longer than the limit: the worker died
      before rqdag's start step. It never started, so it is voided and sent
      again without counting a failure, even for an at-most-once task (``unstarted``);
    - unreadable (garbage over its entry): set aside at once, named in an error
      line (:mod:`rqdag.coordinator.unreadable`).

    Voiding is fenced by the lease and by the attempt's state, so a worker that
    is merely slow finds its attempt void and runs nothing.

    Heartbeats that went silent because Redis itself was unreachable are not held
    against the workers: silence is counted from the later of the heartbeat and
    the moment Redis was last back, so every attempt gets a heartbeat limit after
    an outage to be heard. Redis was back when its server started (a restart or a
    crash: its uptime, read at the watchdog's first check, after a driver that
    stopped on the outage loaded the run again), or at the first check after one of
    the watchdog's own calls stalled: its TIME call, or a read of the run's events
    (:meth:`note_call`), took STALL_S longer than it should have (Redis stopped,
    frozen, or a restart that redis-py's retries rode out).
    """

    def __init__(
        self,
        client: redis.Redis,
        scripts: Scripts,
        lease: Lease,
        heartbeat_timeout_s: float,
        intermediate_key: Callable[[str], str],
        news: Callable[[str], Collection[str]],
        reported: Collection[str] = (),
        listened: Callable[[str], bool] | None = None,
        clock: ServerClock | None = None,
        check_at_once: bool = True,
    ) -> None:
        """``news(token)``: the kinds of the events about that attempt read but not yet
        applied; ``reported``: tasks whose garbage the run's load reported already;
        ``clock``: Redis's clock shared with other runs of this thread (else one of its own);
        ``check_at_once``: the first check is due at once (else one interval from now)."""
        self._client = client
        self._clock = clock or ServerClock(client)
        self._scripts = scripts
        self._lease = lease
        self._keys = RunKeys(lease.run_id)
        self._timeout = heartbeat_timeout_s
        self._intermediate_key = intermediate_key
        self._listened = listened
        self._next_check = 0.0 if check_at_once else time.monotonic() + self._interval(heartbeat_timeout_s)
        self._taken_since: dict[str, float] = {}  # token -> when its job was first seen taken, unstarted
        self._known: dict[str, Known] = {}  # of each attempt in flight, from its last readable entry
        self._unreadable = UnreadableEntries(news, reported)
        self._reachable_since: float | None = None  # Redis TIME from which silence counts
        self._stalled = False  # a call was slow: Redis was away; the next check starts a grace

    def dispatched(self, entries: Mapping[str, DispatchEntry]) -> None:
        """Attempts just sent: their entries as written."""
        self._known.update((name, known_of(entry)) for name, entry in entries.items())

    def started(self, task: str, token: str) -> None:
        """A worker started the attempt ``token`` (its ``started`` event)."""
        seen = self._known.get(task)
        if seen is not None and seen.token == token:
            self._known[task] = seen._replace(started=True)

    def forget(self, task: str) -> None:
        """The task's attempt ended (its worker answered)."""
        self._known.pop(task, None)

    def note_call(self, took_s: float, expected_s: float = 0.0) -> None:
        """A call to Redis took ``took_s`` where ``expected_s`` was due (a blocking read's block)."""
        if took_s > expected_s + STALL_S:
            self._stalled = True

    def _heard_from(self, reading: Reading) -> float:
        """The Redis TIME from which a heartbeat's silence counts: when Redis last came back.

        That is when the Redis server started (a restart, as the clock finds it), or
        the check after a call that stalled; anything earlier is held against no worker.
        """
        if self._reachable_since is None or reading.since > self._reachable_since:
            if self._reachable_since is not None:  # Redis restarted meanwhile
                self._taken_since.clear()
            self._reachable_since = reading.since
        if self._stalled:
            self._reachable_since, self._stalled = reading.server_now, False
            self._taken_since.clear()
        return self._reachable_since

    @staticmethod
    def _interval(shortest_s: float) -> float:
        """Seconds between two checks when the shortest heartbeat limit in play is ``shortest_s``."""
        return min(max(shortest_s / 4, 0.2), MAX_CHECK_INTERVAL_S)

    @property
    def next_check(self) -> float:
        """When :meth:`check` next looks (monotonic time)."""
        return self._next_check

    def check(self, dispatch: Mapping[Any, Any] | None = None) -> list[Completion]:
        """Lost attempts, voided; checked every quarter of the shortest limit in play.

        ``dispatch``: the run's dispatch hash as just read (a loop reads many runs' in one
        round trip); else the check reads it.
        """
        now = time.monotonic()
        if now < self._next_check:
            return []
        reading = self._clock.read()
        server_now = reading.server_now
        since = self._heard_from(reading)
        entries, unreadable = self._entries(
            self._client.hgetall(self._keys.dispatch) if dispatch is None else dispatch
        )
        shortest = min(
            [self._timeout, *(e.heartbeat_timeout for e in entries.values() if e.heartbeat_timeout)]
        )
        self._next_check = now + self._interval(shortest)
        out = [
            self._void(
                name, entry, AttemptState.RUNNING, lost_result(entry.worker, server_now - entry.heartbeat_at)
            )
            for name, entry in entries.items()
            if entry.state is AttemptState.RUNNING
            and entry.heartbeat_at is not None
            and server_now - max(entry.heartbeat_at, since) > (entry.heartbeat_timeout or self._timeout)
        ]
        out += self._vanished(entries)
        out += self._unreadable.set_aside(unreadable, self._known)
        out += self._stranded(entries)
        return [c for c in out if c is not None]

    def _entries(
        self, dispatch: Mapping[Any, Any]
    ) -> tuple[dict[str, DispatchEntry], dict[str, tuple[bytes | str, str]]]:
        """The readable entries of the ``dispatch`` hash, and task -> (raw, problem) of the others."""
        found: dict[str, DispatchEntry] = {}
        unreadable: dict[str, tuple[bytes | str, str]] = {}
        for raw_name, raw in dispatch.items():
            name = text(raw_name)
            try:
                found[name] = parse_dispatch_entry(self._lease.run_id, name, raw)
            except DecodeError as exc:
                unreadable[name] = (raw, str(exc))
        kept = {n: self._known[n] for n in unreadable if n in self._known}
        self._known = {**kept, **{n: known_of(e) for n, e in found.items()}}
        return found, unreadable

    def _vanished(self, entries: dict[str, DispatchEntry]) -> list[Completion | None]:
        """Queued attempts whose job a worker took but never started, for longer than the limit.

        Only attempts dispatched longer than the limit ago are looked at, with two
        O(1) reads each (the job's RQ status; its place in the queue's short
        intermediate list), never a scan of the queue. The clock starts when a
        check first finds the job taken, not at dispatch, so a job that waited in
        a long queue and was just taken by a live worker is left alone.
        """
        wall = time.time()
        old = {
            name: e
            for name, e in entries.items()
            if e.state is AttemptState.QUEUED
            and e.queued_at is not None
            and e.waiting is None
            and wall - e.queued_at > self._timeout
        }
        self._taken_since = {
            t: at for t, at in self._taken_since.items() if t in {e.token for e in old.values()}
        }
        if not old:
            return []
        with self._client.pipeline(transaction=False) as pipe:
            for entry in old.values():
                pipe.hget(Job.key_for(entry.job_id), "status")
                pipe.lpos(self._intermediate_key(entry.rq_queue or entry.queue), entry.job_id)
            replies: list[Any] = pipe.execute()
        now = time.monotonic()
        result = TaskResult.failure("a worker took its job but never started it (the worker died)")
        out: list[Completion | None] = []
        for index, (name, entry) in enumerate(old.items()):
            status, in_intermediate = replies[2 * index], replies[2 * index + 1]
            waiting = status == b"queued" and in_intermediate is None
            if waiting:
                self._taken_since.pop(entry.token, None)
                continue
            since = self._taken_since.setdefault(entry.token, now)
            if now - since > self._timeout:
                out.append(self._void(name, entry, AttemptState.QUEUED, result))
        return out

    def _stranded(self, entries: dict[str, DispatchEntry]) -> list[Completion | None]:
        """Queued jobs in a capability queue that no live worker listens to any more.

        Every worker of that capability left (stopped, or died and lapsed from the
        registry) before taking the job: it never started, so it is voided and
        sent again, routed to a worker that is live now.
        """
        if self._listened is None:
            return []
        wall = time.time()
        result = TaskResult.failure("every worker that could take its job left before taking it")
        return [
            self._void(name, entry, AttemptState.QUEUED, result)
            for name, entry in entries.items()
            if entry.state is AttemptState.QUEUED
            and entry.waiting is None
            and entry.rq_queue is not None
            and wall - (entry.queued_at or wall) > STRANDED_GRACE_S
            and not self._listened(entry.rq_queue)
        ]

    def _void(
        self, name: str, entry: DispatchEntry, state: AttemptState, result: TaskResult
    ) -> Completion | None:
        voided = self._scripts.void_attempt(
            self._keys, lease=self._lease.value, task=name, token=entry.token, state=state
        )
        if voided is VoidOutcome.LEASE_LOST:
            raise LeaseLostError(f"run '{self._lease.run_id}': lease lost while checking workers")
        if voided is VoidOutcome.MOVED_ON:
            return None
        log.warning(
            "run '%s': task '%s' attempt %d lost: %s", self._lease.run_id, name, entry.attempt, result.message
        )
        kind = CompletionKind.UNSTARTED if state is AttemptState.QUEUED else CompletionKind.LOST
        return Completion(name, entry.token, result, kind)
