"""The state machine's queries: results, phases, attempts in flight, inputs and what is due."""

from __future__ import annotations

from typing import Any

from rqdag.coordinator.phases import Phase
from rqdag.coordinator.state_columns import StateColumns
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskStatus


class StateQueriesMixin(StateColumns):
    """Reads of :class:`~rqdag.coordinator.state.TaskStateManager`'s columns, under its lock."""

    def snapshot(self) -> dict[str, TaskResult]:
        """A copy of the terminal results so far: the run's snapshot (with children not expanded yet)."""
        with self._lock:
            return {**self._held, **self._results} if self._held else dict(self._results)

    def task(self, name: str) -> Task:
        """The definition of ``name`` (KeyError: no such task)."""
        return self._table.task(self._index[name])

    def result(self, name: str) -> TaskResult | None:
        """The terminal result of ``name``, if it has one."""
        with self._lock:
            return self._results.get(name)

    def phase(self, name: str) -> Phase:
        """The phase of ``name``."""
        with self._lock:
            return self._phase[self._index[name]]

    def attempt(self, name: str) -> int:
        """The number of the latest attempt of ``name`` (0 before the first)."""
        with self._lock:
            return self._attempt[self._index[name]]

    def is_finished(self) -> bool:
        """True when every task has a terminal result and none waits for an operator."""
        with self._lock:
            return self._unfinished == 0 and not self._in_doubt

    @property
    def running_count(self) -> int:
        """How many tasks are in flight."""
        with self._lock:
            return len(self._token)

    def running(self) -> list[tuple[str, str]]:
        """``(name, token)`` of every task in flight."""
        with self._lock:
            return sorted((self._names[i], token) for i, token in self._token.items())

    def next_wakeup(self) -> float | None:
        """The earliest moment a retry becomes due or a running task times out."""
        with self._lock:
            times = [self._retries[0][0]] if self._retries else []
            times += self._deadline.values()
            return min(times) if times else None

    def inputs_for(self, name: str) -> dict[str, Any]:
        """Dependency name to its ``data``, for the dependencies that succeeded."""
        with self._lock:
            return self._inputs(self._index[name])

    def _inputs(self, i: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        names = self._names
        mapped = self._table.mapped
        for d in self._deps[i]:
            dep = names[d]
            result = self._results.get(dep)
            if result is None:
                continue
            if result.status is TaskStatus.SUCCESS or (result.status is TaskStatus.FAILURE and d in mapped):
                out[dep] = result.data  # a failed mapped task passes on its successful children's data
        return out

    def take_newly_done(self) -> list[tuple[str, TaskResult]]:
        """Results that became terminal since the last call, in order."""
        with self._lock:
            names, self._newly_done = self._newly_done, []
            return [(n, self._results[n]) for n in names]

    def has_ready(self) -> bool:
        """True when a task waits in the ready queue."""
        with self._lock:
            return bool(self._ready)

    def is_blocked(self) -> bool:
        """True when nothing can move until an operator resolves an in-doubt task."""
        with self._lock:
            idle = not (self._token or self._ready or self._retries)
            return idle and bool(self._in_doubt)

    def expired(self, now: float) -> list[tuple[str, str]]:
        """``(name, token)`` of running tasks whose timeout has passed."""
        with self._lock:
            return sorted(
                (self._names[i], self._token[i]) for i, deadline in self._deadline.items() if deadline <= now
            )
