"""RQDispatcher: attempts become RQ jobs; completions come back through the run's event stream.

Here: sending (routed; one fenced script per batch of DISPATCH_BATCH attempts writes
their entries and RQ jobs, all or nothing), collecting
and the results the coordinator decides. The job itself is built in
:mod:`.rq_jobs`, the event stream read in :mod:`.rq_events`, waits, sleeps and
subflows are in :mod:`.rq_holds`, lost attempts are found by :mod:`.watchdog`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from functools import partial
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from rqdag.coordinator.dispatch import Completion, DispatchRequest
from rqdag.coordinator.fleet import FleetReader
from rqdag.coordinator.lease import Lease
from rqdag.coordinator.loop_outbox import DispatchOutbox
from rqdag.coordinator.routing import HELD_RECHECK_S, Router
from rqdag.coordinator.rq_events import RQEventsMixin
from rqdag.coordinator.rq_holds import RQHoldsMixin
from rqdag.coordinator.rq_jobs import queued_entry, queued_job, rq_job_data
from rqdag.coordinator.server_clock import ServerClock
from rqdag.coordinator.watchdog import Watchdog
from rqdag.errors import DecodeError, LeaseLostError
from rqdag.shared import metrics
from rqdag.shared.model.codec import encode_result
from rqdag.shared.model.mapping import Expansion
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry, parse_dispatch_entry
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import DecidedResult, QueuedJob, Scripts
from rqdag.shared.store.workers import read_fleet

# Attempts per dispatch script: bounds the script's work however wide a step of the run is.
DISPATCH_BATCH = 500


class RQDispatcher(RQEventsMixin, RQHoldsMixin):
    """Dispatches attempts as RQ jobs under the run's lease, one fenced script per batch."""

    def __init__(
        self,
        client: redis.Redis,
        scripts: Scripts,
        lease: Lease,
        *,
        last_event_id: bytes = b"0-0",
        heartbeat_timeout_s: float = 30.0,
        reported: Collection[str] = (),
        workflow: str = "",
        traceparent: str | None = None,
        epoch: int = 1,
        fleet: FleetReader = read_fleet,
        clock: ServerClock | None = None,
        adopted: bool = True,
    ) -> None:
        """``reported``: tasks whose unreadable dispatch entry the run's load reported already;
        ``adopted``: the run had attempts in flight when it was loaded (without any, the
        watchdog's first check comes one interval after the start, as every later one does);
        ``workflow`` and ``traceparent`` (the run span's) go into every job, for metrics and traces;
        ``epoch``: the run's epoch (its waits take the signals sent in it, its timers are its own);
        ``fleet`` reads the live workers (a coordinator's runs share one: :class:`.fleet.SharedFleet`);
        ``clock``: Redis's clock, shared by the runs of one driver loop."""
        self._workflow = workflow
        self._traceparent = traceparent
        self._client = client
        self._scripts = scripts
        self._lease = lease
        self._keys = RunKeys(lease.run_id)
        self._store = RunStore(client)
        self._last_id = last_event_id
        self._pending: list[tuple[bytes, dict[bytes, bytes]]] = []
        self._hashes: dict[str, str] = {}  # task -> its definition hash (computed once)
        self._found: list[Completion] = []  # lost attempts a loop's batched check found (see check)
        self._from_workers: set[str] = set()
        self._queues: dict[str, Queue] = {}
        self._woken = False
        self._router = Router(client, lease.run_id, read=fleet)
        self._watchdog = Watchdog(
            client,
            scripts,
            lease,
            heartbeat_timeout_s,
            lambda name: self._queue(name).intermediate_queue_key,
            self._news,
            reported=reported,
            listened=self._router.listened,
            clock=clock,
            check_at_once=adopted,
        )
        self._next_cancel_check = 0.0
        self._epoch = epoch
        self._signalled: list[str] | None = None  # None: the stored signals are still to read
        self._children: list[str] = []  # subflows whose child run's end was announced
        self.cancel_reason: str | None = None
        self.problems: list[str] = []
        # set by a multiplexing loop: it reads the events stream and the cancel field for many runs
        self.multiplexed = False
        # set by a multiplexing loop after the opening step: it sends the dispatch calls of a round
        self.outbox: DispatchOutbox | None = None

    # ---- dispatch ------------------------------------------------------------------

    def submit(self, requests: Sequence[DispatchRequest]) -> None:
        """Enqueue the attempts and write their dispatch entries, fenced by the lease.

        Each job goes to the capability queue of a live worker that can run it
        (:mod:`rqdag.coordinator.routing`); one that no live worker can run is
        held: its entry says why, and it is sent once such a worker registers.
        """
        self._lease.renew_if_due()
        self._router.prepare(requests)
        self._send(requests)

    def _send(self, requests: Sequence[DispatchRequest]) -> None:
        now = time.time()
        for start in range(0, len(requests), DISPATCH_BATCH):
            self._send_batch(requests[start : start + DISPATCH_BATCH], now)

    def _send_batch(self, requests: Sequence[DispatchRequest], now: float) -> None:
        """One fenced script: the batch's dispatch entries and RQ jobs, all or nothing."""
        sent: dict[str, DispatchEntry] = {}
        jobs: list[QueuedJob] = []
        for request in requests:
            task = request.task
            digest = self._hashes.get(task.name) or self._hashes.setdefault(task.name, task.definition_hash())
            data = rq_job_data(
                request,
                workflow=self._workflow,
                traceparent=self._traceparent,
                dispatched_at=now,
                definition_hash=digest,
            )
            route = self._router.place(request, data.job_id)
            sent[task.name] = queued_entry(request, data.job_id, route, now)
            if route.rq_queue is not None:
                jobs.append(queued_job(self._queue(route.rq_queue), data))
        entries = {name: entry.to_json() for name, entry in sent.items()}
        script = self._scripts.dispatch_jobs
        lease, queues = self._lease.value, Queue.redis_queues_keys
        call = script.request(self._keys, lease=lease, entries=entries, jobs=jobs, queues_key=queues)
        if self.outbox is not None:  # sent by the loop with its other runs' calls
            self.outbox.hold(self._lease.run_id, call, partial(self._watchdog.dispatched, sent))
            return
        if script.parse(script.send(call)) is None:
            raise LeaseLostError(f"run '{self._lease.run_id}': lease lost before dispatch")
        self._watchdog.dispatched(sent)

    def _send_held(self) -> None:
        """Send the held attempts that a worker registered since can run."""
        ready = self._router.due()
        if ready:
            self._send(ready)

    def _queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(name, connection=self._client, serializer=JSONSerializer)
            self._queues[name] = queue
        return queue

    # ---- completions -----------------------------------------------------------------

    def collect(self) -> list[Completion]:
        """Completions that arrived; also renews the lease and notes a cancel request."""
        self._lease.renew_if_due()
        if not self._pending and not self.multiplexed:  # wait() has just read what there was
            self._read(block_s=None)
        events, self._pending = self._pending, []
        self._note_signals(events)
        arrived = self._sort(events)
        self._check_cancel()
        self._send_held()
        lost, self._found = self._found + self._watchdog.check() + arrived.handed, []
        metrics.attempts_ended_here(self._workflow, [(c.task, c.kind) for c in lost])
        lost += self._signals()
        if not arrived.finished and not arrived.retried and not arrived.resolved:
            return arrived.inline + lost
        return arrived.inline + self._load_completions(arrived) + lost

    # ---- coordinator-decided results ------------------------------------------------

    @property
    def events_key(self) -> str:
        """The run's events stream, read by a multiplexing loop with :attr:`last_event_id`."""
        return self._keys.events

    @property
    def last_event_id(self) -> bytes:
        """The id of the last event read from the stream (the next read starts after it)."""
        return self._last_id

    @property
    def next_check(self) -> float:
        """When the watchdog, or a held attempt's routing, next wants a step (monotonic time)."""
        held = time.monotonic() + HELD_RECHECK_S if self._router.held else float("inf")
        return min(self._watchdog.next_check, held)

    @property
    def dispatch_key(self) -> str:
        """The run's dispatch hash, which the watchdog's check reads."""
        return self._keys.dispatch

    def check_only(self, now: float) -> bool:
        """True when the watchdog's check is all the dispatcher is due for at ``now``."""
        held = self._pending or self._router.held or self.cancel_reason is not None
        return not held and self._watchdog.next_check <= now

    def check(self, dispatch: Mapping[Any, Any]) -> bool:
        """The watchdog's check on the run's ``dispatch`` hash just read (by a loop, for many
        runs at once); True when it found lost attempts, which the run's next step applies."""
        self._found += self._watchdog.check(dispatch)
        return bool(self._found)

    def note_call(self, took_s: float, expected_s: float) -> None:
        """A multiplexing loop's read of the stream took ``took_s`` where ``expected_s`` was due."""
        self._watchdog.note_call(took_s, expected_s)

    def feed(self, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Events a multiplexing loop read from this run's stream, in order."""
        for event_id, fields in entries:
            self._last_id = event_id
            self._pending.append((event_id, fields))

    def note_cancel(self, reason: str) -> None:
        """A multiplexing loop read a cancel request from the run's meta."""
        if self.cancel_reason is None and reason:
            self.cancel_reason = reason

    def abandon(self, task: str, token: str) -> None:
        """Nothing to send (recording the task's result voids the attempt's token); a held one is dropped."""
        self._router.drop(task, token)

    def unstarted(self, tasks: Sequence[str]) -> set[str]:
        """Those of ``tasks`` whose dispatch entry is still queued (one HMGET)."""
        if not tasks:
            return set()
        raws: list[Any] = self._client.hmget(self._keys.dispatch, list(tasks))
        out = set()
        for name, raw in zip(tasks, raws, strict=True):
            try:
                if (
                    raw is not None
                    and parse_dispatch_entry(self._lease.run_id, name, raw).state is AttemptState.QUEUED
                ):
                    out.add(name)
            except DecodeError:
                continue  # an unreadable entry counts as started: nothing is claimed about it
        return out

    def record(self, results: Mapping[str, TaskResult]) -> None:
        """Write skips, cancels and time-outs under the lease (worker results are in already)."""
        decided: list[DecidedResult] = []
        for name, result in results.items():
            if name in self._from_workers:
                self._from_workers.discard(name)
                continue
            what = f"run '{self._lease.run_id}': result of '{name}'"
            decided.append(DecidedResult(name, encode_result(result, what=what), result.status.value))
        if not decided:
            return
        written = self._scripts.record_results(self._keys, lease=self._lease.value, results=decided)
        if written is None:
            raise LeaseLostError(f"run '{self._lease.run_id}': lease lost while recording results")
        metrics.results_decided(self._workflow, {d.task: d.status for d in decided})

    def record_expansion(self, mapped: str, expansion: Expansion) -> None:
        """Store the children of ``mapped`` under the lease, before any of them is dispatched."""
        self._lease.renew_if_due()
        with self._lease.writing():  # fenced by WATCH of the lease key
            self._store.write_expansion(self._lease.run_id, self._lease.value, mapped, expansion)

    def fetch_results(self, names: Sequence[str]) -> dict[str, TaskResult]:
        """The stored results of ``names`` (children loaded by status only), read in chunks."""
        run = self._lease.run_id
        out: dict[str, TaskResult] = {}
        for name, raw in zip(names, self._store.read_result_values(run, names), strict=True):
            if raw is not None:
                out[name] = self._decode(raw, f"run '{run}': results field '{name}'")
        return out

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""
