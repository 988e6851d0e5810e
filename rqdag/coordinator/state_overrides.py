"""The state machine's results decided over the attempts' heads: a cancel, an operator's resolution.

Cancelling (a cancel request, the run's deadline) gives every task without a
result its cancelled one at once; a resolution replaces a task's result with
what an operator recorded (``rqdag resolve``), and an in-doubt task's
dependents go on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace

from rqdag.coordinator.phases import Phase
from rqdag.coordinator.state_columns import StateColumns
from rqdag.shared.model.result import TaskMetrics, TaskResult


class StateOverridesMixin(StateColumns):
    """Cancel and resolve, over :class:`~rqdag.coordinator.state.TaskStateManager`'s columns."""

    running: Callable[[], list[tuple[str, str]]]
    _child_done: Callable[[int, list[tuple[int, TaskResult]]], None]
    _release_dependents: Callable[[int, list[tuple[int, TaskResult]]], None]
    _finish: Callable[[int, TaskResult], None]

    def _cancelled(self, i: int, message: str, unstarted: bool) -> TaskResult:
        """The cancelled result of task ``i``: when it was cancelled, and the attempts that started."""
        running = i in self._token and not unstarted
        attempts = self._attempt[i] - (1 if i in self._token and unstarted else 0)
        if running:
            return replace(
                TaskResult.cancelled(f"{message} while running"), metrics=TaskMetrics(attempt=attempts)
            )
        if attempts:
            result = TaskResult.cancelled(f"{message} while waiting to retry")
            return replace(result, metrics=TaskMetrics(attempt=attempts))
        return TaskResult.cancelled(f"cancelled before it started: {message}")  # no attempt to count

    def cancel_all(self, message: str, unstarted: Collection[str] = ()) -> list[tuple[str, str]]:
        """Cancel every task without a result; returns the running ones as (name, token).

        ``unstarted``: tasks in flight whose attempt no worker has started (still
        queued); that attempt is not counted.
        """
        with self._lock:
            was_running = self.running()
            names = self._names
            for i, phase in enumerate(self._phase):
                if phase is Phase.DONE:
                    continue
                result = self._cancelled(i, message, names[i] in unstarted)
                self._results[names[i]] = result
                self._phase[i] = Phase.DONE
                self._newly_done.append(names[i])
            self._token.clear()
            self._deadline.clear()
            self._ready.clear()
            self._retries.clear()
            self._in_doubt.clear()  # the results keep their flag; the run may end
            self._unfinished = 0
            return was_running

    def resolve(self, name: str, result: TaskResult) -> bool:
        """An operator recorded what really happened to a task: replace its result.

        An in-doubt task's dependents then go on (or are skipped). Returns False
        when ``name`` has no result to replace.
        """
        with self._lock:
            previous = self._results.get(name)
            if previous is None:
                return False
            self._results[name] = result
            self._newly_done.append(name)
            if name in self._in_doubt and not result.in_doubt:
                self._in_doubt.discard(name)
                work: list[tuple[int, TaskResult]] = []
                i = self._index[name]
                if i >= self._table.base:
                    self._child_done(i, work)
                self._release_dependents(i, work)
                for child, skip in work:
                    self._finish(child, skip)
            return True
