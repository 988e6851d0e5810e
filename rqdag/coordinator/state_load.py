"""The state machine's set-up: a snapshot's results loaded, then the ready queue primed.

A task whose dependencies all have a usable result is ready (or skipped, or a
mapped task expanding) from the start; the rest wait for their dependencies.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Mapping

from rqdag.coordinator.phases import Phase
from rqdag.coordinator.readiness import count_unresolved, skip_result
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import TaskStatus


class StateLoadMixin:
    """Loading results into :class:`~rqdag.coordinator.state.TaskStateManager`'s columns."""

    _table: TaskTable
    _index: dict[str, int]
    _deps: list[list[int]]
    _lock: threading.RLock
    _phase: list[Phase]
    _remaining: list[int]
    _attempt: list[int]
    _token: dict[int, str]
    _dependents: dict[int, list[int]] | None
    _results: dict[str, TaskResult]
    _ready: list[tuple[int, int]]
    _unfinished: int
    _in_doubt: set[str]
    _hold: Callable[[str, TaskResult, bool], bool]
    _begin_map: Callable[[int], TaskResult | None]
    _mark_ready: Callable[[int], tuple[int, int]]
    _finish: Callable[[int, TaskResult], None]

    def hydrate(self, snapshot: Mapping[str, TaskResult], *, keep_all: bool = False) -> list[str]:
        """Load results before the run starts; returns the snapshot's unknown task names.

        ``success`` entries become done and satisfied. With ``keep_all`` (a
        coordinator restarting inside the same epoch) every terminal result is
        kept; otherwise failure, cancelled and skipped are evaluated again.
        """
        with self._lock:
            if self._token or self._results:
                raise RuntimeError("hydrate() must be called before the run starts")
            unknown = self._load(snapshot, keep_all)
            self._prime()
            return unknown

    def _load(self, snapshot: Mapping[str, TaskResult], keep_all: bool) -> list[str]:
        index = self._index
        phase = self._phase
        attempt = self._attempt
        unknown: list[str] = []
        for name, result in snapshot.items():
            i = index.get(name)
            if i is None:
                if not self._hold(name, result, keep_all):
                    unknown.append(name)
            elif keep_all or result.status is TaskStatus.SUCCESS:
                self._results[name] = result
                if result.in_doubt:
                    self._in_doubt.add(name)
                phase[i] = Phase.DONE
                attempt[i] = result.metrics.attempt
        self._unfinished = len(phase) - len(self._results)
        return unknown

    def _prime(self) -> None:
        self._ready.clear()
        self._dependents = None
        phase = self._phase
        in_doubt = [self._index[name] for name in self._in_doubt]
        resolved = count_unresolved(phase, self._deps, self._remaining, in_doubt)
        # Many tasks may be ready at once (a resumed run): queue them all, then heapify once.
        ready = self._ready
        mapped = self._table.mapped
        if not mapped and all(r.status is TaskStatus.SUCCESS for r in self._results.values()):
            ready.extend([self._mark_ready(i) for i in resolved])  # none is skipped, none expands
        else:
            for i in resolved:
                skip = skip_result(self._table, self._results, i)
                if skip is None and i in mapped:
                    skip = self._begin_map(i)  # its result when it has one at once
                if skip is None:
                    if i not in mapped:
                        ready.append(self._mark_ready(i))
                elif self._phase[i] is not Phase.DONE:
                    self._finish(i, skip)
        heapq.heapify(ready)
