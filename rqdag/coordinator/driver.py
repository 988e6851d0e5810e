"""RunDriver: one coordinator drives one run from Redis to its end, under the run's lease."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from rqdag.coordinator.events import EventBus
from rqdag.coordinator.executor import WorkflowExecutor
from rqdag.coordinator.fleet import FleetReader
from rqdag.coordinator.lease import DEFAULT_LEASE_TTL_S, Lease
from rqdag.coordinator.opening import gc_paused, opened_meta, rebuild
from rqdag.coordinator.progress import read_opening
from rqdag.coordinator.rq_dispatcher import RQDispatcher
from rqdag.coordinator.run_outcome import run_status
from rqdag.coordinator.server_clock import ServerClock
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import DecodeError, LeaseLostError
from rqdag.shared import metrics, traces
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import FINISHED_RUN_STATUSES, RunEventKind, RunStatus
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import RunMeta, RunState
from rqdag.shared.store.retention import DEFAULT_RETENTION_S
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from rqdag.shared.store.workers import read_fleet

log = logging.getLogger("rqdag.coordinator")


class RunDriver:
    """Takes the lease, rebuilds the run from Redis, and steps it to the end.

    Nothing it needs lives only in its memory: kill it at any point and another
    driver picks the run up where it stood. Its :attr:`state` holds the
    successes it found in Redis by status only (see :mod:`.progress`): the
    run's snapshot is read from Redis (``RunHandle.snapshot()``), not from it.
    """

    def __init__(
        self,
        client: redis.Redis,
        run_id: str,
        owner: str,
        *,
        scripts: Scripts | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        events: EventBus | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        requeue_running: bool = False,
        retention_s: float = DEFAULT_RETENTION_S,
        on_started: Callable[[], object] | None = None,
        fleet: FleetReader = read_fleet,
        server_clock: ServerClock | None = None,
        inbox: str = "",
    ) -> None:
        """``requeue_running``: the caller knows every worker of the run died (the
        embedded default after a crash): running attempts are handed back at once.
        ``retention_s``: how long the finished run stays in Redis unless its workflow
        says otherwise (0: forever). ``on_started`` is called after the first step,
        whose writes Redis accepted (the service ends a full-Redis episode with it).
        ``server_clock``: Redis's clock, shared by the runs of one driver loop; ``inbox``: the
        loop's inbox stream, where the workers tell it of the run's news (see :mod:`.multiplex`)."""
        self._client = client
        self._scripts = scripts or Scripts.register(client)
        self._store = RunStore(client)
        self._keys = RunKeys(run_id)
        self.run_id = run_id
        self.lease = Lease(client, self._scripts, run_id, owner, lease_ttl_s, inbox=inbox)
        self._events = events or EventBus()
        self._stop = stop or threading.Event()
        self._clock = clock
        self._requeue_running = requeue_running
        self._blocked = False
        self._retention_s = retention_s
        self._on_started = on_started
        self._fleet = fleet
        self._server_clock = server_clock
        self._workflow = ""
        self._span = traces.Span()
        self.state: TaskStateManager | None = None
        self.outcome: RunStatus | None = None
        self.found_ended = False
        self._leased = False
        self._stepwise = False  # opened by open(): a multiplexing loop reads its events
        self._stepped: tuple[WorkflowExecutor, RQDispatcher] | None = None

    def drive(self) -> RunStatus | None:
        """Drive the run; returns its final status, or None if another coordinator has it."""
        if not self.lease.acquire():
            return None
        status: RunStatus | None = None
        try:
            status = self._drive_leased()
            return status
        except LeaseLostError as exc:
            log.warning("%s; another coordinator goes on with the run", exc)
            return None
        finally:
            self.lease.release()  # a no-op when the lease was lost: it is fenced by its value
            metrics.run_released(self.run_id)
            self._span.end(None if status is None else status.value)

    def _drive_leased(self) -> RunStatus | None:
        with gc_paused():
            started = self._start()
        if isinstance(started, RunStatus):
            return started
        executor, dispatcher = started
        if not executor.loop(stop=self._stop.is_set, observe=self._note_blocked):
            return None  # asked to stop: the run goes on elsewhere, so it has no workflow_end here
        return self._finish(executor, dispatcher)

    def _finish(self, executor: WorkflowExecutor, dispatcher: RQDispatcher) -> RunStatus:
        """The run's tasks all ended: write its status, let it expire, announce its end."""
        assert self.state is not None
        status = run_status(self.state.snapshot(), cancelled=dispatcher.cancel_reason is not None)
        self._set_status(status)
        parent = self._store.close_finished_run(self.run_id, self._retention_s)
        if parent is not None:  # a child run: its parent's coordinator gives its subflow task the outcome
            self._store.note_child_ended(parent[0], parent[1])
        executor.end(self._final_results())
        return status

    # ---- stepped: many runs multiplexed in one thread (see .multiplex) ----------------

    def open(self) -> bool:
        """Take the lease, load the run and take its first step; True when it goes on stepwise.

        False when it ended here (:attr:`outcome` says how) or another coordinator
        holds it (:attr:`outcome` None). Then, or after :meth:`advance` returned
        True, call :meth:`close`.
        """
        if not self.lease.acquire():
            return False
        self._leased = True
        with gc_paused():
            self._stepwise = True
            started = self._start()
        if isinstance(started, RunStatus):
            self.outcome = started
            return False
        self._stepped = started
        started[1].multiplexed = True
        return True

    @property
    def dispatcher(self) -> RQDispatcher:
        """The open run's dispatcher (its event stream, last id and next check)."""
        assert self._stepped is not None, "open() the run first"
        return self._stepped[1]

    def advance(self, now: float) -> bool:
        """One step of an open run; True when it finished (its status in :attr:`outcome`)."""
        assert self._stepped is not None, "open() the run first"
        executor, dispatcher = self._stepped
        if not executor.step(now):
            self._note_blocked()
            return False
        dispatcher.close()
        self.outcome = self._finish(executor, dispatcher)
        return True

    def next_due(self, now: float) -> float:
        """When the open run needs its next step though no event comes (monotonic time)."""
        assert self._stepped is not None, "open() the run first"
        executor, dispatcher = self._stepped
        due = executor.next_due(now)
        return min(dispatcher.next_check, float("inf") if due is None else due)

    def check_only(self, now: float) -> bool:
        """True when the open run is due at ``now`` for its watchdog's check alone (no event,
        no timer of its own): a loop checks it on a dispatch hash read for many runs at once
        (:meth:`RQDispatcher.check`) and steps it only when the check found something."""
        assert self._stepped is not None, "open() the run first"
        executor, dispatcher = self._stepped
        due = executor.next_due(now)
        return (due is None or due > now) and dispatcher.check_only(now)

    def close(self) -> None:
        """Hand the lease back (fenced: a no-op when it was lost) and end the run's span."""
        if self._stepped is not None and self.outcome is None:
            self._stepped[1].close()
        if self._leased:
            self.lease.release()
            metrics.run_released(self.run_id)
        self._span.end(None if self.outcome is None else self.outcome.value)

    def _start(self) -> RunStatus | tuple[WorkflowExecutor, RQDispatcher]:
        """Load the run and take its first step (its first dispatch), or say why it ends here.

        Opened stepwise (:meth:`open`), a multiplexing loop reads the run's events and
        cancel requests from the start, so the first step reads neither (the opening read
        has the cancel field).
        """
        loaded = self._load()
        if isinstance(loaded, RunStatus):
            return loaded
        meta, state, run_state = loaded
        self.state = state
        self._span = traces.start_run_span(self.run_id, meta.workflow, meta.traceparent or None)
        dispatcher = RQDispatcher(
            self._client,
            self._scripts,
            self.lease,
            last_event_id=run_state.last_event_id,
            heartbeat_timeout_s=meta.heartbeat_timeout_s,
            reported=run_state.unreadable_dispatch,
            workflow=meta.workflow,
            traceparent=self._span.traceparent,
            epoch=meta.epoch,
            fleet=self._fleet,
            clock=self._server_clock,
            # stepped by a loop with nothing in flight: no first check before the first dispatch
            adopted=not self._stepwise or bool(run_state.dispatch or run_state.unreadable_dispatch),
        )
        if self._stepwise:
            dispatcher.multiplexed = True
            dispatcher.note_cancel(meta.cancel)
        remaining = None if meta.deadline_at is None else meta.deadline_at - time.time()
        executor = WorkflowExecutor(
            state,
            dispatcher,
            run_id=self.run_id,
            params=meta.params,
            concurrency=meta.concurrency,
            timeout=remaining,
            events=self._events,
            clock=self._clock,
        )
        self._set_status(RunStatus.RUNNING)
        executor.step(self._clock())
        if self._on_started is not None:
            self._on_started()
        return executor, dispatcher

    def _load(self) -> RunStatus | tuple[RunMeta, TaskStateManager, RunState]:
        """The run's meta and state rebuilt from Redis, or the status it ends with here."""
        try:
            opening = read_opening(self._client, self.run_id)
            meta = opened_meta(self.run_id, opening)
            self._workflow = meta.workflow
            if meta.finished:
                self._store.expire_finished_run(self.run_id, self._retention_s)  # if a crash skipped it
                self._store.mark_inactive(self.run_id)
                self.found_ended = True  # another coordinator ended it before this one got the lease
                return meta.status
            self.lease.announce()
            with self.lease.kept_alive():
                state, run_state = rebuild(
                    self._client, self.run_id, opening, self._clock(), requeue_running=self._requeue_running
                )
        except DecodeError as exc:
            log.error("%s; the run is marked 'error' and left for an operator", exc)
            self._store.mark_error(self.run_id, str(exc))
            self._set_status(RunStatus.ERROR)
            return RunStatus.ERROR
        return meta, state, run_state

    def _note_blocked(self) -> None:
        """Between steps: show in the run's status whether it waits for an operator."""
        assert self.state is not None
        if self.state.is_blocked() == self._blocked:
            return
        self._blocked = not self._blocked
        self._set_status(RunStatus.BLOCKED if self._blocked else RunStatus.RUNNING)
        log.warning(
            "run '%s' %s",
            self.run_id,
            "blocked: resolve its in-doubt tasks" if self._blocked else "unblocked",
        )

    def _final_results(self) -> dict[str, TaskResult] | None:
        """What workflow_end announces: the run's snapshot from Redis, read only for a listener.

        The state holds the successes it loaded by status only; the payload is the
        snapshot, as in-process (None: nobody listens, the state's own will do).
        """
        if not self._events.listens(RunEventKind.WORKFLOW_END):
            return None
        return self._store.read_results(self.run_id)

    def _set_status(self, status: RunStatus) -> None:
        written = self._scripts.set_run_status(
            self._keys, lease=self.lease.value, status=status, now=time.time()
        )
        if not written:
            raise LeaseLostError(f"run '{self.run_id}': lease lost while setting status {status}")
        finished = status in FINISHED_RUN_STATUSES
        metrics.run_status(self.run_id, self._workflow, status.value, finished=finished)
