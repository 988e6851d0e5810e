"""Holds: the waits and sleeps a run has reached, their timers, and the signals for them.

A wait or a sleep is a task the coordinator completes itself: the state machine
hands it out like any task (phase RUNNING, with a token), but the executor keeps
it here instead of sending it to a dispatcher. It holds no worker, no thread and,
in-process, no ``concurrency`` slot. A signal completes a wait (one that came
before the wait was reached is kept until it is); a timer, measured by the
dispatcher (Redis time when distributed), fails a wait at its deadline or ends a
sleep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskKind


@dataclass(frozen=True, slots=True)
class Hold:
    """One wait or sleep reached: its attempt's token and when its timer fires (loop clock)."""

    task: Task
    token: str
    fires_at: float | None
    since: float  # wall clock, for the result's metrics


class Holds:
    """The waits and sleeps in progress, and the signals that came for waits."""

    def __init__(self) -> None:
        self._held: dict[str, Hold] = {}
        self._signals: dict[str, TaskResult] = {}
        self._early = False  # a hold ended as it started (its signal came first)

    def __len__(self) -> int:
        return len(self._held)

    def start(self, task: Task, token: str, left_s: float | None, now: float) -> TaskResult | None:
        """Hold ``task`` (its timer fires in ``left_s``, None: never); returns its result at once
        when a signal came for it before it was reached."""
        fires_at = None if left_s is None else now + max(left_s, 0.0)
        self._held[task.name] = Hold(task, token, fires_at, time.time())
        early = self._signals.pop(task.name, None)
        if early is not None and task.kind is TaskKind.WAIT:
            self._early = True
            return self._end(task.name, early)[1]
        return None

    def ended_early(self) -> bool:
        """True once after :meth:`start` ended a hold at once (its result is to publish)."""
        early, self._early = self._early, False
        return early

    def token(self, name: str) -> str | None:
        """The token of the held attempt of ``name``, or None when it is not held."""
        hold = self._held.get(name)
        return None if hold is None else hold.token

    def signal(self, name: str, result: TaskResult) -> tuple[str, TaskResult] | None:
        """A signal for ``name``: ``(token, result)`` when its wait is held, else kept for later."""
        hold = self._held.get(name)
        if hold is None:
            self._signals[name] = result
            return None
        if hold.task.kind is not TaskKind.WAIT:
            return None
        return self._end(name, result)

    def due(self, now: float) -> list[tuple[str, str, TaskResult]]:
        """``(name, token, result)`` of every hold whose timer has fired by ``now``."""
        fired = [
            h
            for h in self._held.values()
            if h.fires_at is not None and h.fires_at <= now and h.task.kind is not TaskKind.SUBFLOW
        ]
        out = []
        for hold in fired:
            task = hold.task
            if task.kind is TaskKind.SLEEP:
                result = TaskResult.success(None, message=f"slept {task.seconds:g}s")
            else:
                result = TaskResult.failure(f"no signal within {task.timeout_s:g}s")
            token, result = self._end(task.name, result)
            out.append((task.name, token, result))
        return out

    def checks(self, now: float, every_s: float) -> list[str]:
        """The subflows whose child run is due for a check by ``now`` (each due again ``every_s`` later)."""
        out = []
        for name, hold in list(self._held.items()):
            if hold.task.kind is TaskKind.SUBFLOW and hold.fires_at is not None and hold.fires_at <= now:
                self._held[name] = Hold(hold.task, hold.token, now + every_s, hold.since)
                out.append(name)
        return out

    def subflows(self) -> list[str]:
        """The subflows held: their child runs are running."""
        return [n for n, h in self._held.items() if h.task.kind is TaskKind.SUBFLOW]

    def end(self, name: str, result: TaskResult) -> tuple[str, TaskResult] | None:
        """End the hold of ``name`` with ``result`` (a child run's outcome); None if not held."""
        return self._end(name, result) if name in self._held else None

    def next_wakeup(self) -> float | None:
        """The earliest moment a timer fires (loop clock), or None."""
        times = [h.fires_at for h in self._held.values() if h.fires_at is not None]
        return min(times) if times else None

    def clear(self) -> None:
        """Forget every hold (the run was cancelled: their results are written already)."""
        self._held.clear()

    def _end(self, name: str, result: TaskResult) -> tuple[str, TaskResult]:
        hold = self._held.pop(name)
        finished = time.time()
        metrics = TaskMetrics(started_at=hold.since, finished_at=finished, duration_s=finished - hold.since)
        return hold.token, TaskResult(
            result.status,
            message=result.message,
            error=result.error,
            data=result.data,
            metrics=metrics,
            definition_hash=hold.task.definition_hash(),
        )
