"""The executor's part for the tasks no dispatcher runs: waits, sleeps and subflows.

A wait or a sleep reached starts its timer (the dispatcher stores it) and ends
on its signal or when the timer fires; a subflow starts its child run and ends
with the child's outcome, checked every CHILD_CHECK_S and when the child's end
comes as an event. Each takes no concurrency slot (see :class:`Holds`).
"""

from __future__ import annotations

from rqdag.coordinator.dispatch import Dispatcher
from rqdag.coordinator.events import EventBus, RunEvent
from rqdag.coordinator.holds import Holds
from rqdag.coordinator.phases import Dispatch
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import RqdagError
from rqdag.shared.model.holds import is_held, params_task
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import RunEventKind, TaskKind

CHILD_CHECK_S = 2.0  # how often a held subflow checks its child run (its end also comes as an event)


class HeldTasksMixin:
    """:class:`~rqdag.coordinator.executor.WorkflowExecutor`'s waits, sleeps and subflows."""

    _state: TaskStateManager
    _dispatcher: Dispatcher
    _run_id: str
    _events: EventBus
    _holds: Holds

    def _hold(self, batch: list[Dispatch], now: float) -> list[Dispatch]:
        """Keep the waits and sleeps of ``batch`` (their timers started); returns the rest."""
        rest = []
        for d in batch:
            task = d.task
            if not is_held(task):
                rest.append(d)
                continue
            if task.kind is TaskKind.SUBFLOW:
                self._start_child(d, now)
                continue
            seconds = task.seconds if task.seconds is not None else task.timeout_s
            left = None if seconds is None else self._dispatcher.hold(task.name, seconds)
            early = self._holds.start(task, d.token, left, now)
            self._events.emit(RunEvent(RunEventKind.TASK_START, self._run_id, task.name, d.attempt))
            if early is not None:
                self._end_hold(task.name, (d.token, early), now)
        return rest

    def _start_child(self, d: Dispatch, now: float) -> None:
        task = d.task
        assert task.subflow is not None
        self._events.emit(RunEvent(RunEventKind.TASK_START, self._run_id, task.name, d.attempt))
        self._holds.start(task, d.token, CHILD_CHECK_S, now)
        try:
            self._dispatcher.start_child(task.name, task.subflow, d.inputs.get(params_task(task.name)))
        except RqdagError as exc:  # bad params: the subflow fails, the run goes on
            self._end_hold(task.name, self._holds.end(task.name, TaskResult.failure(str(exc))), now)
            return
        self._check_child(task.name, now)

    def _check_child(self, name: str, now: float) -> None:
        if self._holds.token(name) is None:
            return
        outcome = self._dispatcher.child_outcome(name)
        if outcome is not None:
            self._end_hold(name, self._holds.end(name, outcome), now)

    def _end_hold(self, name: str, ended: tuple[str, TaskResult] | None, now: float) -> None:
        if ended is not None:
            self._state.complete(name, ended[0], ended[1], now, retryable=False)

    def _expire_holds(self, now: float) -> None:
        """Check the subflows due a check; end the waits and sleeps whose time is up."""
        for name in self._holds.checks(now, CHILD_CHECK_S):
            self._check_child(name, now)
        for name, token, result in self._holds.due(now):
            self._state.complete(name, token, result, now, retryable=False)
