"""RQDispatcher: attempts become RQ jobs; completions come back through the run's event stream."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import redis
from redis.client import Pipeline
from rq import Queue
from rq.queue import EnqueueData
from rq.serializers import JSONSerializer

from rqdag.coordinator.dispatch import Completion, CompletionKind, DispatchRequest
from rqdag.coordinator.lease import Lease
from rqdag.coordinator.routing import HELD_RECHECK_S, Router
from rqdag.coordinator.watchdog import Watchdog
from rqdag.errors import DecodeError, LeaseLostError
from rqdag.shared import metrics
from rqdag.shared.model.codec import decode_result, encode_result
from rqdag.shared.model.holds import params_task
from rqdag.shared.model.job import RUN_TASK, TaskJob
from rqdag.shared.model.mapping import Expansion
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AttemptState, EventKind
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store.children import cancel_child, child_outcome, start_child
from rqdag.shared.store.keys import RunKeys, job_id
from rqdag.shared.store.records import DispatchEntry, parse_dispatch_entry, text
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import DecidedResult, Scripts
from rqdag.shared.store.signals import signal_epoch, signal_result

log = logging.getLogger("rqdag.coordinator")

RQ_RESULT_TTL_S = 60
RQ_FAILURE_TTL_S = 7 * 24 * 3600
READ_COUNT = 10_000
BLOCK_SLICE_S = 0.5
LINGER_S = 0.01
LINGER_MIN_IN_FLIGHT = 64
LINGER_BATCH = 32


class RQDispatcher:
    """Dispatches attempts as RQ jobs under the run's lease, in one MULTI/EXEC per batch."""

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
    ) -> None:
        """``reported``: tasks whose unreadable dispatch entry the run's load reported already;
        ``workflow`` and ``traceparent`` (the run span's) go into every job, for metrics and traces;
        ``epoch``: the run's epoch (its waits take the signals sent in it, its timers are its own)."""
        self._workflow = workflow
        self._traceparent = traceparent
        self._client = client
        self._scripts = scripts
        self._lease = lease
        self._keys = RunKeys(lease.run_id)
        self._store = RunStore(client)
        self._last_id = last_event_id
        self._pending: list[tuple[bytes, dict[bytes, bytes]]] = []
        self._from_workers: set[str] = set()
        self._queues: dict[str, Queue] = {}
        self._woken = False
        self._router = Router(client, lease.run_id)
        self._watchdog = Watchdog(
            client,
            scripts,
            lease,
            heartbeat_timeout_s,
            lambda name: self._queue(name).intermediate_queue_key,
            self._news,
            reported=reported,
            listened=self._router.listened,
        )
        self._next_cancel_check = 0.0
        self._epoch = epoch
        self._signalled: list[str] | None = None  # None: the stored signals are still to read
        self._children: list[str] = []  # subflows whose child run's end was announced
        self.cancel_reason: str | None = None
        self.problems: list[str] = []

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
        sent: dict[str, DispatchEntry] = {}
        by_queue: dict[str, list[EnqueueData]] = defaultdict(list)
        for request in requests:
            task = request.task
            data = rq_job_data(
                request, workflow=self._workflow, traceparent=self._traceparent, dispatched_at=now
            )
            route = self._router.place(request, data.job_id)
            sent[task.name] = DispatchEntry(
                attempt=request.attempt,
                token=request.token,
                job_id=data.job_id,
                state=AttemptState.QUEUED,
                queue=task.queue,
                queued_at=now,
                rq_queue=route.rq_queue,
                waiting=route.waiting,
                failures=request.failures,
                retry_of=request.retry_of,
            )
            if route.rq_queue is not None:
                by_queue[route.rq_queue].append(data)

        def enqueue(pipe: Pipeline) -> None:
            for queue_name, datas in by_queue.items():
                self._queue(queue_name).enqueue_many(datas, pipeline=pipe)

        entries = {name: entry.to_json() for name, entry in sent.items()}
        self._store.dispatch(self._lease.run_id, self._lease.value, entries, enqueue)
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

    def wait(self, timeout: float, *, in_flight: int = 0) -> None:
        """Block on the event stream until something arrives, wake(), or timeout.

        With many attempts in flight the workers have queued work to go on with,
        so a completion or two that arrive alone wait LINGER_S for the next ones:
        a batch costs the coordinator one read and one step instead of one each.
        """
        if self._router.held:  # a capable worker may register any moment
            timeout = min(timeout, HELD_RECHECK_S)
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._pending and not self._woken:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._read(block_s=min(remaining, BLOCK_SLICE_S))
        if not self._woken and in_flight >= LINGER_MIN_IN_FLIGHT and len(self._pending) < LINGER_BATCH:
            time.sleep(LINGER_S)
            self._read(block_s=None)
        self._woken = False

    def wake(self) -> None:
        """Make wait() return within one blocking slice (safe from a signal handler)."""
        self._woken = True

    def collect(self) -> list[Completion]:
        """Completions that arrived; also renews the lease and notes a cancel request."""
        self._lease.renew_if_due()
        if not self._pending:  # wait() has just read what there was
            self._read(block_s=None)
        events, self._pending = self._pending, []
        self._note_signals(events)
        finished: list[str] = []
        retried: list[str] = []
        resolved: list[str] = []
        handed: list[Completion] = []
        inline: list[Completion] = []
        tokens: dict[str, str] = {}
        for _, fields in events:
            kind = text(fields.get(b"kind", b""))
            task = text(fields.get(b"task", b""))
            if kind == EventKind.RESOLVED:
                resolved.append(task)
            elif kind == EventKind.STARTED:
                self._watchdog.started(task, text(fields.get(b"token", b"")))
            elif kind == EventKind.HANDBACK:
                self._watchdog.forget(task)
                worker = text(fields.get(b"worker", b"?"))
                result = TaskResult.failure(f"worker {worker} shut down and handed the task back")
                token = text(fields.get(b"token", b""))
                handed.append(Completion(task, token, result, CompletionKind.HANDED_BACK))
            elif kind in (EventKind.FINISHED, EventKind.RETRY):
                self._watchdog.forget(task)
                token = text(fields.get(b"token", b""))
                raw = fields.get(b"result")
                if raw is not None:  # a small result travels in its event: nothing to read
                    what = "results" if kind == EventKind.FINISHED else "dispatch last_result"
                    inline.append(
                        self._completion(task, token, raw, f"{what} of '{task}' (in its event)", kind)
                    )
                    continue
                (finished if kind == EventKind.FINISHED else retried).append(task)
                tokens[task] = token
            elif kind == EventKind.REFUSED:
                log.warning(
                    "run '%s': late result of task '%s' (token %s) refused",
                    self._lease.run_id,
                    task,
                    text(fields.get(b"token", b"")),
                )
        self._check_cancel()
        self._send_held()
        lost = self._watchdog.check() + handed
        metrics.attempts_ended_here(self._workflow, [(c.task, c.kind) for c in lost])
        lost += self._signals()
        if not finished and not retried and not resolved:
            return inline + lost
        return inline + self._load_completions(finished, retried, resolved, tokens) + lost

    def _completion(self, task: str, token: str, raw: bytes | str, what: str, kind: str) -> Completion:
        """The completion of a ``finished`` or ``retry`` event whose result is ``raw``.

        A failure the worker wrote as final (``finished``) is final: only the worker saw
        its exception, and whether the task's ``Retry(on=...)`` lists it.
        """
        result = self._decode(raw, f"run '{self._lease.run_id}': {what}")
        if kind == EventKind.FINISHED:  # written by its worker: record() has nothing to write for it
            self._from_workers.add(task)
        return Completion(task, token, result, retryable=kind == EventKind.RETRY)

    def _read(self, block_s: float | None) -> None:
        block = None if block_s is None else max(int(block_s * 1000), 1)
        started = time.monotonic()
        reply: Any = self._client.xread({self._keys.events: self._last_id}, count=READ_COUNT, block=block)
        self._watchdog.note_call(time.monotonic() - started, block_s or 0.0)  # slow: Redis was away
        for _stream, entries in reply or []:
            for event_id, fields in entries:
                self._last_id = event_id
                self._pending.append((event_id, fields))

    def _news(self, token: str) -> set[str]:
        """The kinds of the events about attempt ``token`` read but not applied yet (read now)."""
        self._read(block_s=None)
        wanted = token.encode()
        return {text(f.get(b"kind", b"")) for _, f in self._pending if f.get(b"token") == wanted}

    def _check_cancel(self) -> None:
        now = time.monotonic()
        if now < self._next_cancel_check:
            return
        self._next_cancel_check = now + 0.5
        if self.cancel_reason is None:
            reason = self._client.hget(self._keys.meta, "cancel")
            if reason:
                self.cancel_reason = text(reason)

    def _load_completions(
        self, finished: list[str], retried: list[str], resolved: list[str], tokens: Mapping[str, str]
    ) -> list[Completion]:
        with self._client.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.results, finished or ["\x00"])
            pipe.hmget(self._keys.dispatch, retried or ["\x00"])
            pipe.hmget(self._keys.results, resolved or ["\x00"])
            final_raw, retry_raw, resolved_raw = pipe.execute()
        out: list[Completion] = []
        run = self._lease.run_id
        for name, raw in zip(resolved, resolved_raw, strict=False):
            if raw is not None:
                result = self._decode(raw, f"run '{run}': results field '{name}'")
                out.append(Completion(name, "", result, CompletionKind.RESOLVED))
        for name, raw in zip(finished, final_raw, strict=False):
            if raw is not None:
                out.append(
                    self._completion(name, tokens[name], raw, f"results field '{name}'", EventKind.FINISHED)
                )
        for name, raw in zip(retried, retry_raw, strict=False):
            if raw is None:
                continue
            try:
                entry = parse_dispatch_entry(run, name, raw)
            except DecodeError as exc:
                self.problems.append(str(exc))
                log.error("%s", exc)
                continue
            if entry.token != tokens[name] or entry.last_result is None:
                continue
            result = self._decode(entry.last_result, f"run '{run}': dispatch '{name}' last_result")
            out.append(Completion(name, entry.token, result))
        return out

    def _decode(self, raw: bytes | str, what: str) -> TaskResult:
        try:
            return decode_result(raw, what=what)
        except DecodeError as exc:
            self.problems.append(str(exc))
            log.error("%s", exc)
            return TaskResult.failure(f"stored result is unreadable: {exc}")

    # ---- waits and sleeps -----------------------------------------------------------

    def hold(self, task: str, seconds: float) -> float:
        """Start the timer of a wait or sleep in Redis, fenced, or read back the one stored."""
        left = self._scripts.hold_timer(
            self._keys, lease=self._lease.value, field=f"{self._epoch}:{task}", seconds=seconds
        )
        if left is None:
            raise LeaseLostError(
                f"run '{self._lease.run_id}': lease lost while starting the timer of '{task}'"
            )
        return left

    def start_child(self, task: str, workflow: Workflow, params: Any) -> None:
        """Start the child run ``RUN.task`` once (see :mod:`rqdag.shared.store.children`), with
        the data of its params task as stored (``params`` when none is)."""
        self._lease.renew_if_due()
        run = self._lease.run_id
        stored = self._store.read_result_json(run, params_task(task))  # a restarted state has no data
        if stored is not None:
            params = self._decode(stored, f"run '{run}': results field '{params_task(task)}'").data
        start_child(self._store, run, task, self._epoch, workflow, params)

    def child_outcome(self, task: str) -> TaskResult | None:
        """The child run's outcome, or None while it runs."""
        return child_outcome(self._store, self._lease.run_id, task)

    def cancel_child(self, task: str, reason: str) -> None:
        """Ask the child run to stop."""
        cancel_child(self._store, self._lease.run_id, task, reason)

    def _note_signals(self, events: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """The tasks of the ``signal`` and ``child`` events among ``events``, for :meth:`_signals`."""
        for _, fields in events:
            kind = text(fields.get(b"kind", b""))
            if kind == EventKind.SIGNAL and self._signalled is not None:  # None: all are read anyway
                self._signalled.append(text(fields.get(b"task", b"")))
            elif kind == EventKind.CHILD:
                self._children.append(text(fields.get(b"task", b"")))

    def _signals(self) -> list[Completion]:
        """Signals that arrived, as completions; the first call takes every stored one (a
        signal sent before this coordinator started, or before its wait was reached)."""
        run = self._lease.run_id
        ended, self._children = self._children, []
        out = [Completion(task, "", TaskResult.success(), CompletionKind.CHILD_ENDED) for task in ended]
        tasks, self._signalled = self._signalled, []
        stored = self._store.read_signals(run, tasks)
        for task, raw in stored.items():
            try:
                if signal_epoch(raw, run, task) < self._epoch:
                    continue
                out.append(Completion(task, "", signal_result(raw, run, task), CompletionKind.SIGNALLED))
            except DecodeError as exc:
                self.problems.append(str(exc))
                log.error("%s", exc)
        return out

    # ---- coordinator-decided results ------------------------------------------------

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


def rq_job_data(
    request: DispatchRequest,
    *,
    workflow: str | None = None,
    traceparent: str | None = None,
    dispatched_at: float | None = None,
) -> EnqueueData:
    """The RQ job of one attempt: :data:`RUN_TASK` with the :class:`TaskJob` as its JSON kwargs."""
    job = TaskJob.of_task(
        request.run_id,
        request.task,
        attempt=request.attempt,
        token=request.token,
        failures=request.failures,
        workflow=workflow,
        dispatched_at=dispatched_at,
        traceparent=traceparent,
        item=request.item,
        mapped_inputs=request.mapped_inputs,
        lazy_inputs=request.lazy_inputs,
    )
    return Queue.prepare_data(
        RUN_TASK,
        kwargs=job.to_kwargs(),
        job_id=job_id(job.run_id, job.task, job.attempt),
        timeout=-1,
        result_ttl=RQ_RESULT_TTL_S,
        failure_ttl=RQ_FAILURE_TTL_S,
        description=job.description,
    )
