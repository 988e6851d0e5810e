"""TaskStateManager: the pure state machine of one run (no I/O, no clock of its own).

Phases of a task: WAITING (dependencies not resolved), READY, RUNNING, RETRY_WAIT,
DONE (a terminal TaskResult). Only DONE tasks appear in the snapshot.

Here: its columns, an attempt's way from ready through running to its result,
and the cascade a result sets off. Its set-up from a snapshot is in
:mod:`.state_load`, its queries in :mod:`.state_queries`, a cancel and an
operator's resolution in :mod:`.state_overrides`, mapped tasks in :mod:`.map_state`.
"""

from __future__ import annotations

import heapq
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace

from rqdag.coordinator.map_state import MapStateMixin
from rqdag.coordinator.phases import Dispatch, Outcome, Phase
from rqdag.coordinator.readiness import skip_result, unfinished_dependents
from rqdag.coordinator.state_load import StateLoadMixin
from rqdag.coordinator.state_overrides import StateOverridesMixin
from rqdag.coordinator.state_queries import StateQueriesMixin
from rqdag.shared.model.graph import validate_graph
from rqdag.shared.model.holds import is_held
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import TaskStatus


class TaskStateManager(StateLoadMixin, StateQueriesMixin, StateOverridesMixin, MapStateMixin):
    """Results, dependency counts, ready queue by priority, retries and skip cascade.

    Tasks are kept by index in a :class:`TaskTable` (names, dependency indexes),
    with their phase, count of unresolved dependencies and attempt number in
    lists: a run of 100,000 tasks costs a few lists, not an object per task.
    Thread-safe: :meth:`snapshot` may be called from any thread while the run goes on.
    """

    def __init__(
        self,
        tasks: Sequence[Task] | TaskTable,
        *,
        track_timeouts: bool = True,
        snapshot: Mapping[str, TaskResult] | None = None,
        keep_all: bool = False,
    ) -> None:
        """``tasks``: a list of tasks, or the table of a stored definition (checked already);
        ``track_timeouts=False`` when the backend enforces ``timeout_s`` itself (workers);
        ``snapshot`` and ``keep_all``: as :meth:`hydrate`, in one pass (a large run loads faster)."""
        if not isinstance(tasks, TaskTable):
            validate_graph(tasks)
            tasks = TaskTable.of_tasks(tasks)
        self._table = tasks
        self._names = tasks.names
        self._index = tasks.index
        self._deps = tasks.deps
        count = len(tasks)
        self._track_timeouts = track_timeouts
        self._lock = threading.RLock()
        self._phase: list[Phase] = [Phase.WAITING] * count
        self._remaining: list[int] = [0] * count  # dependencies without a usable result yet
        self._attempt: list[int] = [0] * count
        self._failures: dict[int, int] = {}  # failed or lost attempts so far (kept in dispatch entries)
        self._retry_of: dict[int, str] = {}  # the token of the attempt whose reported failure is retried
        self._token: dict[int, str] = {}  # the tasks in flight, and their attempt's token
        self._deadline: dict[int, float] = {}  # running tasks that have a deadline
        self._dependents: dict[int, list[int]] | None = None  # built when first needed
        self._results: dict[str, TaskResult] = {}
        self._ready: list[tuple[int, int]] = []  # (-priority, index)
        self._retries: list[tuple[float, int]] = []  # (when, index)
        self._newly_done: list[str] = []
        self._unfinished = count
        self._in_doubt: set[str] = set()  # results that wait for an operator (rqdag resolve)
        self._init_maps()
        if snapshot is not None:
            self._load(snapshot, keep_all)
        self._prime()

    # ---- transitions --------------------------------------------------------

    def take_ready(self, now: float, limit: int) -> list[Dispatch]:
        """Start up to ``limit`` ready tasks, highest priority first."""
        with self._lock:
            while self._retries and self._retries[0][0] <= now:
                _, i = heapq.heappop(self._retries)
                self._push_ready(i)
            out: list[Dispatch] = []
            phase = self._phase
            while self._ready and len(out) < limit:
                _, i = heapq.heappop(self._ready)
                if phase[i] is Phase.READY:  # else adopted meanwhile: a stale entry
                    out.append(self._start(i, now))
            return out

    def _start(self, i: int, now: float) -> Dispatch:
        task = self._table.task(i)
        self._phase[i] = Phase.RUNNING
        attempt = self._attempt[i] = self._attempt[i] + 1
        token = self._token[i] = f"{attempt}-{uuid.uuid4().hex[:16]}"
        deadline = None
        if self._track_timeouts and task.timeout_s is not None and not is_held(task):
            deadline = self._deadline[i] = now + task.timeout_s
        table = self._table
        mapped = tuple(self._names[d] for d in self._deps[i] if d in table.mapped) if table.mapped else ()
        parent = table.parent(i)
        lazy = () if parent is None else (table.task(parent).map_over or "",)
        failures, retry_of = self._failures.get(i, 0), self._retry_of.get(i)
        return Dispatch(
            task, attempt, token, self._inputs(i), deadline, table.item(i), mapped, lazy, failures, retry_of
        )

    def adopt(
        self,
        name: str,
        attempt: int,
        token: str,
        deadline: float | None,
        *,
        failures: int = 0,
        retry_of: str | None = None,
    ) -> None:
        """Mark ``name`` as already running (an attempt found in flight after a restart).

        ``failures`` and ``retry_of``: what its dispatch entry recorded (see
        :class:`~rqdag.coordinator.phases.Dispatch`), so the retry budget counts on.
        """
        with self._lock:
            i = self._index[name]
            if self._phase[i] not in (Phase.READY, Phase.WAITING, Phase.RETRY_WAIT):
                return
            # its entry in the ready queue, if any, is dropped when it comes up (take_ready)
            self._phase[i] = Phase.RUNNING
            self._attempt[i] = attempt
            self._token[i] = token
            if failures:
                self._failures[i] = failures
            if retry_of is not None:
                self._retry_of[i] = retry_of
            if deadline is not None:
                self._deadline[i] = deadline

    def complete(
        self,
        name: str,
        token: str,
        result: TaskResult,
        now: float,
        *,
        retryable: bool = True,
        lost: bool = False,
    ) -> Outcome:
        """Apply the result of one attempt; a stale token is ignored.

        A failure is retried while the task's retry budget lasts, unless
        ``retryable`` is False. ``lost`` means the attempt started and ended without
        a result (its worker vanished, or stopped and handed it back): the loss
        counts as a failed attempt, an at-least-once task is dispatched again at
        least once whatever its budget (so it runs at most ``1 + max(attempts, 1)``
        times in all), and an at-most-once task is never run again: it fails with
        "outcome unknown".
        """
        with self._lock:
            i = self._stop_running(name, token)
            if i is None:
                return Outcome.STALE
            attempt = self._attempt[i]
            if result.metrics.attempt != attempt:
                result = replace(result, metrics=replace(result.metrics, attempt=attempt))
            task = self._table.task(i)
            budget = task.retry.attempts
            if lost:
                if task.at_most_once:
                    retryable = False
                    result = replace(result, message=f"outcome unknown: {result.message}", in_doubt=True)
                else:
                    budget = max(budget, 1)
            failures = self._failures.get(i, 0)
            if result.status is TaskStatus.FAILURE:
                failures = self._failures[i] = failures + 1
            if result.status is TaskStatus.FAILURE and retryable and failures <= budget:
                self._phase[i] = Phase.RETRY_WAIT
                heapq.heappush(self._retries, (now + task.retry.delay_before(failures), i))
                if lost:
                    self._retry_of.pop(i, None)
                else:
                    self._retry_of[i] = token
                return Outcome.RETRY
            self._failures.pop(i, None)
            self._retry_of.pop(i, None)
            self._finish(i, result)
            return Outcome.DONE

    def hand_back(self, name: str, token: str, result: TaskResult, now: float) -> Outcome:
        """A running attempt given up without a result (its worker stopped, or all died).

        It started, so it is a lost attempt like any other (see :meth:`complete`):
        it counts against the retry budget, and an at-most-once task is in doubt.
        """
        return self.complete(name, token, result, now, lost=True)

    def requeue(self, name: str, token: str) -> bool:
        """Send an attempt that never started again (its job vanished unstarted): no failure counted."""
        with self._lock:
            i = self._stop_running(name, token)
            if i is None:
                return False
            self._push_ready(i)
            return True

    # ---- internals ----------------------------------------------------------

    def _stop_running(self, name: str, token: str) -> int | None:
        """The index of ``name`` taken out of the running set, if its current attempt is ``token``."""
        i = self._index.get(name)
        if i is None or self._phase[i] is not Phase.RUNNING or self._token.get(i) != token:
            return None
        del self._token[i]
        self._deadline.pop(i, None)
        return i

    def _push_ready(self, i: int) -> None:
        heapq.heappush(self._ready, self._mark_ready(i))

    def _mark_ready(self, i: int) -> tuple[int, int]:
        """Make task ``i`` ready; returns its ready-queue entry (higher priority first, then order)."""
        self._phase[i] = Phase.READY
        return (-self._table.priorities[i], i)

    def _finish(self, i: int, result: TaskResult) -> None:
        # A worklist, not recursion: a skip cascade down a long chain stays flat.
        work = [(i, result)]
        first_child = self._table.base
        while work:
            done, done_result = work.pop()
            if self._phase[done] is Phase.DONE:
                continue  # a mapped task settled by its last child as well as by a skip
            name = self._names[done]
            self._results[name] = done_result
            self._phase[done] = Phase.DONE
            self._unfinished -= 1
            self._newly_done.append(name)
            if done_result.in_doubt:  # it holds its dependents (and its mapped task) back until resolved
                self._in_doubt.add(name)
                continue
            if done >= first_child:
                self._child_done(done, work)
            self._release_dependents(done, work)

    def _release_dependents(self, i: int, work: list[tuple[int, TaskResult]]) -> None:
        phase = self._phase
        if self._dependents is None:  # built on the first completion, not at the start
            self._dependents = unfinished_dependents(phase, self._deps)
        remaining = self._remaining
        mapped = self._table.mapped
        for child in self._dependents.get(i, ()):
            if phase[child] is not Phase.DONE:
                remaining[child] -= 1
                if remaining[child] == 0:
                    skip = skip_result(self._table, self._results, child)
                    if skip is None and child in mapped:
                        skip = self._begin_map(child)
                    elif skip is None:
                        self._push_ready(child)
                    if skip is not None:
                        work.append((child, skip))
