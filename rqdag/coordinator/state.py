"""TaskStateManager: the pure state machine of one run (no I/O, no clock of its own).

Phases of a task: WAITING (dependencies not resolved), READY, RUNNING, RETRY_WAIT,
DONE (a terminal TaskResult). Only DONE tasks appear in the snapshot.
"""

from __future__ import annotations

import heapq
import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from rqdag.coordinator.map_state import MapStateMixin
from rqdag.coordinator.phases import Dispatch, Outcome, Phase
from rqdag.coordinator.readiness import count_unresolved, skip_result, unfinished_dependents
from rqdag.shared.model.graph import validate_graph
from rqdag.shared.model.holds import is_held
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import TaskStatus


class TaskStateManager(MapStateMixin):
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

    # ---- set-up -------------------------------------------------------------

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

    # ---- queries ------------------------------------------------------------

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

    # ---- transitions --------------------------------------------------------

    def has_ready(self) -> bool:
        """True when a task waits in the ready queue."""
        with self._lock:
            return bool(self._ready)

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

    def is_blocked(self) -> bool:
        """True when nothing can move until an operator resolves an in-doubt task."""
        with self._lock:
            idle = not (self._token or self._ready or self._retries)
            return idle and bool(self._in_doubt)

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

    def expired(self, now: float) -> list[tuple[str, str]]:
        """``(name, token)`` of running tasks whose timeout has passed."""
        with self._lock:
            return sorted(
                (self._names[i], self._token[i]) for i, deadline in self._deadline.items() if deadline <= now
            )

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
