"""WorkflowExecutor: the loop that drives a run, one ``step(now)`` at a time.

Its waits, sleeps and subflows (tasks no dispatcher runs) are in :mod:`.executor_holds`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rqdag.coordinator.dispatch import CompletionKind, Dispatcher, DispatchRequest
from rqdag.coordinator.events import EventBus, RunEvent
from rqdag.coordinator.executor_holds import HeldTasksMixin
from rqdag.coordinator.holds import Holds
from rqdag.coordinator.phases import Outcome
from rqdag.coordinator.state import TaskStateManager
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.vocabulary import RunEventKind, TaskStatus

MAX_IDLE_WAIT_S = 1.0
MAX_BATCH = 500
FIRST_BATCH = 50  # the first dispatch is small: workers get going while the next batch is built


class WorkflowExecutor(HeldTasksMixin):
    """Asks the state manager what is ready, dispatches it, applies completions.

    Handles the concurrency limit, per-task timeouts, retries, the run's deadline
    and cancellation. Tests drive :meth:`step` with their own clock.
    """

    def __init__(
        self,
        state: TaskStateManager,
        dispatcher: Dispatcher,
        *,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,
        events: EventBus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self._state = state
        self._dispatcher = dispatcher
        self._run_id = run_id
        self._params = dict(params or {})
        self._concurrency = concurrency
        self._timeout = timeout
        self._events = events or EventBus()
        self._clock = clock
        self._deadline: float | None = None
        self._cancel_reason: str | None = None
        self._started = False
        self._dispatched = False
        # (wall clock, loop clock) of each dispatch, for the metrics of a time-out
        self._started_at: dict[str, tuple[float, float]] = {}
        self._holds = Holds()  # the waits and sleeps reached: no dispatcher runs them

    def cancel(self, reason: str = "run cancelled") -> None:
        """Ask the run to stop: pending tasks become cancelled (thread-safe)."""
        # A plain assignment, no lock: cancel() may run inside a signal handler.
        if self._cancel_reason is None:
            self._cancel_reason = reason
        self._dispatcher.wake()

    def start(self, now: float) -> None:
        """Begin the run at ``now``: fix its deadline, announce it."""
        self._started = True
        if self._timeout is not None:
            self._deadline = now + self._timeout
        self._events.emit(RunEvent(RunEventKind.WORKFLOW_START, self._run_id))
        self._publish()

    def step(self, now: float) -> bool:
        """One iteration; returns True when every task has a terminal result."""
        if not self._started:
            self.start(now)
        for completion in self._dispatcher.collect():
            kind = completion.kind
            if kind is CompletionKind.RESOLVED:
                self._state.resolve(completion.task, completion.result)
                continue
            if kind is CompletionKind.CHILD_ENDED:
                self._check_child(completion.task, now)
                continue
            if kind is CompletionKind.SIGNALLED:
                self._end_hold(completion.task, self._holds.signal(completion.task, completion.result), now)
                continue
            if kind is CompletionKind.UNSTARTED:  # never started: safe to send again, at-most-once or not
                self._state.requeue(completion.task, completion.token)
                continue
            if kind is CompletionKind.HANDED_BACK:  # it started: a lost attempt, whatever the reason
                outcome = self._state.hand_back(completion.task, completion.token, completion.result, now)
            else:
                outcome = self._state.complete(
                    completion.task,
                    completion.token,
                    completion.result,
                    now,
                    retryable=completion.retryable,
                    lost=kind is CompletionKind.LOST,
                )
            if outcome is not Outcome.STALE:
                self._started_at.pop(completion.task, None)
            self._announce_retry(outcome, completion.task, completion.result)
        self._expire(now)
        self._settle_maps()
        self._stop_if_asked(now)
        self._publish()
        self._dispatch(now)
        if self._holds.ended_early():
            self._publish()  # a wait reached with its signal in already ended in _dispatch
        return self._state.is_finished()

    def run(self) -> dict[str, TaskResult]:
        """Step until the run is finished; returns the results (also announced in workflow_end)."""
        self.loop()
        return self.end()

    def loop(
        self,
        *,
        stop: Callable[[], bool] | None = None,
        observe: Callable[[], None] | None = None,
    ) -> bool:
        """Step until the run is finished (True) or ``stop()`` says to leave it (False).

        The one loop of both modes. After each step that leaves the run
        unfinished, ``stop`` is asked, then ``observe`` is called (the Redis
        driver: its stop flag, then its run's blocked / running status), then the
        loop waits for the dispatcher. The dispatcher is closed either way.
        """
        try:
            while not self.step(self._clock()):
                if stop is not None and stop():
                    return False
                if observe is not None:
                    observe()
                self._dispatcher.wait(self.idle_wait(self._clock()), in_flight=self._state.running_count)
        finally:
            self._dispatcher.close()
        return True

    def end(self, results: dict[str, TaskResult] | None = None) -> dict[str, TaskResult]:
        """Announce the end of the finished run (workflow_end, the last event); returns its results.

        ``results`` replaces the state's snapshot in the event: the Redis driver
        gives the run's snapshot from Redis (its state holds successes by status only).
        """
        if results is None:
            results = self._state.snapshot()
        self._events.emit(RunEvent(RunEventKind.WORKFLOW_END, self._run_id, results=results))
        return results

    def idle_wait(self, now: float) -> float:
        """How long the loop may block before the next timed event (a timeout, a retry, a
        wait's deadline or a sleep's end, the run's deadline)."""
        due = self.next_due(now)
        return MAX_IDLE_WAIT_S if due is None else max(0.0, min(due - now, MAX_IDLE_WAIT_S))

    def next_due(self, now: float) -> float | None:
        """When the next step is due though nothing arrives: ``now`` if there is more to
        dispatch, else the next timer (see :meth:`idle_wait`); None: no timer."""
        if self._state.has_ready() and (self._concurrency is None or self._running() < self._concurrency):
            return now  # more to dispatch: the next step goes on with it
        times = (self._state.next_wakeup(), self._holds.next_wakeup(), self._deadline)
        wake_at = [t for t in times if t is not None]
        return min(wake_at) if wake_at else None

    def _announce_retry(self, outcome: Outcome, name: str, result: TaskResult) -> None:
        if outcome is Outcome.RETRY:
            attempt = self._state.attempt(name)
            self._events.emit(RunEvent(RunEventKind.TASK_RETRY, self._run_id, name, attempt, result))

    def _running(self) -> int:
        """Attempts in flight that a dispatcher runs (a held wait or sleep takes no slot)."""
        return self._state.running_count - len(self._holds)

    def _expire(self, now: float) -> None:
        self._expire_holds(now)
        for name, token in self._state.expired(now):
            self._dispatcher.abandon(name, token)
            timeout = self._state.task(name).timeout_s or 0.0
            started_wall, started = self._started_at.pop(name, (time.time() - timeout, now - timeout))
            result = TaskResult(
                TaskStatus.FAILURE,
                message=f"timed out after {timeout:g}s",
                metrics=TaskMetrics(
                    started_at=started_wall,
                    finished_at=started_wall + (now - started),
                    duration_s=now - started,
                    attempt=self._state.attempt(name),
                ),
            )
            retryable = self._state.task(name).retry.allows(TimeoutError)
            outcome = self._state.complete(name, token, result, now, retryable=retryable)
            self._announce_retry(outcome, name, result)

    def _stop_if_asked(self, now: float) -> None:
        reason = self._cancel_reason
        if reason is None:
            reason = self._dispatcher.cancel_reason  # asked through the backend (Redis: the run's meta)
        if reason is None and self._deadline is not None and now >= self._deadline:
            reason = f"run timed out after {self._timeout:g}s"
        if reason is None or self._state.is_finished():
            return
        for name in self._holds.subflows():
            self._dispatcher.cancel_child(name, reason)
        unstarted = self._dispatcher.unstarted([name for name, _ in self._state.running()])
        for name, token in self._state.cancel_all(reason, unstarted):
            if self._holds.token(name) is None:
                self._dispatcher.abandon(name, token)
        self._holds.clear()

    def _dispatch(self, now: float) -> None:
        limit = self._concurrency - self._running() if self._concurrency is not None else 1 << 30
        limit = min(limit, MAX_BATCH if self._dispatched else FIRST_BATCH)
        if limit <= 0:
            return
        batch = self._hold(self._state.take_ready(now, limit), now)
        if not batch:
            return
        requests = [
            DispatchRequest(
                self._run_id,
                d.task,
                d.attempt,
                d.token,
                d.inputs,
                self._params,
                d.item,
                d.mapped_inputs,
                d.lazy_inputs,
                d.failures,
                d.retry_of,
            )
            for d in batch
        ]
        self._dispatcher.submit(requests)
        self._dispatched = True
        wall = time.time()
        for d in batch:
            self._started_at[d.task.name] = (wall, now)
            self._events.emit(RunEvent(RunEventKind.TASK_START, self._run_id, d.task.name, d.attempt))

    def _settle_maps(self) -> None:
        """Mapped tasks whose children are all done get their aggregate (unloaded results read first)."""
        for name, missing in self._state.take_gathers():
            self._state.settle_map(name, self._dispatcher.fetch_results(missing))

    def _publish(self) -> None:
        # Children are stored before any of them is dispatched (and before later results).
        for name, expansion in self._state.take_new_expansions():
            self._dispatcher.record_expansion(name, expansion)
        done = self._state.take_newly_done()
        if not done:
            return
        self._dispatcher.record(dict(done))
        for name, result in done:
            kind = RunEventKind.TASK_SKIPPED if result.status is TaskStatus.SKIPPED else RunEventKind.TASK_END
            self._events.emit(RunEvent(kind, self._run_id, name, result.metrics.attempt, result))
