"""TaskStateManager: the pure state machine of one run (no I/O, no clock of its own).

Phases of a task: WAITING (dependencies not resolved), READY, RUNNING, RETRY_WAIT,
DONE (a terminal TaskResult). Only DONE tasks appear in the snapshot.
"""

from __future__ import annotations

import heapq
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from rqdag.coordinator.slots import Dispatch, Outcome, Phase, Slot
from rqdag.shared.graph import validate_graph
from rqdag.shared.model import Task, TaskMetrics, TaskResult, TaskStatus


class TaskStateManager:
    """Results, dependency counts, ready queue by priority, retries and skip cascade.

    Thread-safe: :meth:`snapshot` may be called from any thread while the run goes on.
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        track_timeouts: bool = True,
        validated: bool = False,
        snapshot: Mapping[str, TaskResult] | None = None,
        keep_all: bool = False,
    ) -> None:
        """``track_timeouts=False`` when the backend enforces ``timeout_s`` itself (workers);
        ``validated=True`` when the caller has just checked the graph (a stored definition);
        ``snapshot`` and ``keep_all``: as :meth:`hydrate`, in one pass (a large run loads faster)."""
        if not validated:
            validate_graph(tasks)
        self._track_timeouts = track_timeouts
        self._lock = threading.RLock()
        self._slots = {t.name: Slot(t, i) for i, t in enumerate(tasks)}
        self._dependents: dict[str, list[str]] = {}  # only tasks that have dependents
        dependents = self._dependents
        for t in tasks:
            for dep in t.depends_on:
                children = dependents.get(dep)
                if children is None:
                    dependents[dep] = [t.name]
                else:
                    children.append(t.name)
        self._results: dict[str, TaskResult] = {}
        self._ready: list[tuple[int, int, str]] = []
        self._retries: list[tuple[float, int, str]] = []
        self._running: set[str] = set()
        self._timed: set[str] = set()  # running tasks that have a deadline
        self._newly_done: list[str] = []
        self._unfinished = len(tasks)
        self._in_doubt: set[str] = set()  # results that wait for an operator (rqdag resolve)
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
            if self._running or self._results:
                raise RuntimeError("hydrate() must be called before the run starts")
            unknown = self._load(snapshot, keep_all)
            self._prime()
            return unknown

    def _load(self, snapshot: Mapping[str, TaskResult], keep_all: bool) -> list[str]:
        slots = self._slots
        unknown = [name for name in snapshot if name not in slots]
        for name, result in snapshot.items():
            slot = slots.get(name)
            if slot is not None and (keep_all or result.status is TaskStatus.SUCCESS):
                self._results[name] = result
                if result.in_doubt:
                    self._in_doubt.add(name)
                slot.phase = Phase.DONE
                slot.attempt = result.metrics.attempt
        self._unfinished = len(slots) - len(self._results)
        return unknown

    def _prime(self) -> None:
        self._ready.clear()
        resolved: list[str] = []
        results = self._results
        in_doubt = self._in_doubt
        for name, slot in self._slots.items():
            if slot.phase is Phase.DONE:
                continue
            slot.phase = Phase.WAITING
            deps = slot.task.depends_on
            remaining = len(deps)
            if results:  # a dependency counts once it has a result that is not in doubt
                for dep in deps:
                    if dep in results and dep not in in_doubt:
                        remaining -= 1
            slot.remaining = remaining
            if remaining == 0:
                resolved.append(name)
        # Many tasks may be ready at once (a resumed run): queue them all, then heapify once.
        ready = self._ready
        for name in resolved:
            skip = self._skip_result(name)
            if skip is None:
                ready.append(self._mark_ready(name))
            else:
                self._finish(name, skip)
        heapq.heapify(ready)

    # ---- queries ------------------------------------------------------------

    def snapshot(self) -> dict[str, TaskResult]:
        """A copy of the terminal results so far: the run's snapshot."""
        with self._lock:
            return dict(self._results)

    def task(self, name: str) -> Task:
        """The definition of ``name``."""
        return self._slots[name].task

    def result(self, name: str) -> TaskResult | None:
        """The terminal result of ``name``, if it has one."""
        with self._lock:
            return self._results.get(name)

    def phase(self, name: str) -> Phase:
        """The phase of ``name``."""
        with self._lock:
            return self._slots[name].phase

    def attempt(self, name: str) -> int:
        """The number of the latest attempt of ``name`` (0 before the first)."""
        with self._lock:
            return self._slots[name].attempt

    def is_finished(self) -> bool:
        """True when every task has a terminal result and none waits for an operator."""
        with self._lock:
            return self._unfinished == 0 and not self._in_doubt

    @property
    def running_count(self) -> int:
        """How many tasks are in flight."""
        with self._lock:
            return len(self._running)

    def running(self) -> list[tuple[str, str]]:
        """``(name, token)`` of every task in flight."""
        with self._lock:
            return [(n, self._slots[n].token or "") for n in sorted(self._running)]

    def next_wakeup(self) -> float | None:
        """The earliest moment a retry becomes due or a running task times out."""
        with self._lock:
            times = [self._retries[0][0]] if self._retries else []
            times += [d for n in self._timed if (d := self._slots[n].deadline) is not None]
            return min(times) if times else None

    def inputs_for(self, name: str) -> dict[str, Any]:
        """Dependency name to its ``data``, for the dependencies that succeeded."""
        with self._lock:
            out: dict[str, Any] = {}
            for dep in self._slots[name].task.depends_on:
                result = self._results.get(dep)
                if result is not None and result.status is TaskStatus.SUCCESS:
                    out[dep] = result.data
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
                _, _, name = heapq.heappop(self._retries)
                self._push_ready(name)
            out: list[Dispatch] = []
            while self._ready and len(out) < limit:
                _, _, name = heapq.heappop(self._ready)
                if self._slots[name].phase is Phase.READY:  # else adopted meanwhile: a stale entry
                    out.append(self._start(name, now))
            return out

    def _start(self, name: str, now: float) -> Dispatch:
        slot = self._slots[name]
        slot.phase = Phase.RUNNING
        slot.attempt += 1
        slot.token = f"{slot.attempt}-{uuid.uuid4().hex[:16]}"
        timeout = slot.task.timeout_s if self._track_timeouts else None
        slot.deadline = now + timeout if timeout is not None else None
        self._running.add(name)
        if slot.deadline is not None:
            self._timed.add(name)
        return Dispatch(slot.task, slot.attempt, slot.token, self.inputs_for(name), slot.deadline)

    def adopt(self, name: str, attempt: int, token: str, deadline: float | None) -> None:
        """Mark ``name`` as already running (an attempt found in flight after a restart)."""
        with self._lock:
            slot = self._slots[name]
            if slot.phase not in (Phase.READY, Phase.WAITING, Phase.RETRY_WAIT):
                return
            # its entry in the ready queue, if any, is dropped when it comes up (take_ready)
            slot.phase, slot.attempt, slot.token, slot.deadline = (Phase.RUNNING, attempt, token, deadline)
            self._running.add(name)
            if deadline is not None:
                self._timed.add(name)

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
        ``retryable`` is False. ``lost`` means the attempt's worker vanished: the
        loss counts as a failed attempt, an at-least-once task is dispatched again
        at least once whatever its budget, and an at-most-once task is never run
        again: it fails with "outcome unknown".
        """
        with self._lock:
            slot = self._slots.get(name)
            if slot is None or slot.phase is not Phase.RUNNING or slot.token != token:
                return Outcome.STALE
            self._running.discard(name)
            self._timed.discard(name)
            slot.token = None
            slot.deadline = None
            if result.metrics.attempt != slot.attempt:
                result = replace(result, metrics=replace(result.metrics, attempt=slot.attempt))
            budget = slot.task.retry.attempts
            if lost:
                if slot.task.at_most_once:
                    retryable = False
                    result = replace(result, message=f"outcome unknown: {result.message}", in_doubt=True)
                else:
                    budget = max(budget, 1)
            if result.status is TaskStatus.FAILURE:
                slot.failures += 1
            can_retry = retryable and slot.failures <= budget
            if result.status is TaskStatus.FAILURE and can_retry:
                slot.phase = Phase.RETRY_WAIT
                slot.retry_at = now + slot.task.retry.delay_before(slot.failures)
                heapq.heappush(self._retries, (slot.retry_at, slot.order, name))
                return Outcome.RETRY
            self._finish(name, result)
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
                work: list[tuple[str, TaskResult]] = []
                self._release_dependents(name, work)
                for child, skip in work:
                    self._finish(child, skip)
            return True

    def is_blocked(self) -> bool:
        """True when nothing can move until an operator resolves an in-doubt task."""
        with self._lock:
            idle = not (self._running or self._ready or self._retries)
            return idle and bool(self._in_doubt)

    def hand_back(self, name: str, token: str, result: TaskResult, now: float) -> None:
        """A running attempt given up without a result (its worker stopped, or all died).

        An at-least-once task runs again with no failure counted; an
        at-most-once task may have acted, so it is lost: in doubt.
        """
        if self.task(name).at_most_once:
            self.complete(name, token, result, now, lost=True)
        else:
            self.requeue(name, token)

    def requeue(self, name: str, token: str) -> bool:
        """Hand a running attempt back (its worker stopped cleanly): it runs again, no failure counted."""
        with self._lock:
            slot = self._slots.get(name)
            if slot is None or slot.phase is not Phase.RUNNING or slot.token != token:
                return False
            self._running.discard(name)
            self._timed.discard(name)
            slot.token = None
            slot.deadline = None
            self._push_ready(name)
            return True

    def expired(self, now: float) -> list[tuple[str, str]]:
        """``(name, token)`` of running tasks whose timeout has passed."""
        with self._lock:
            return [
                (n, self._slots[n].token or "")
                for n in sorted(self._timed)
                if (d := self._slots[n].deadline) is not None and d <= now
            ]

    def cancel_all(self, message: str) -> list[tuple[str, str]]:
        """Cancel every task without a result; returns the running ones as (name, token)."""
        with self._lock:
            was_running = self.running()
            for name, slot in self._slots.items():
                if slot.phase is Phase.DONE:
                    continue
                suffix = " while running" if name in self._running else ""
                result = TaskResult.cancelled(message + suffix)
                if slot.attempt:
                    result = replace(result, metrics=TaskMetrics(attempt=slot.attempt))
                self._results[name] = result
                slot.phase = Phase.DONE
                self._newly_done.append(name)
            self._running.clear()
            self._timed.clear()
            self._ready.clear()
            self._retries.clear()
            self._in_doubt.clear()  # the results keep their flag; the run may end
            self._unfinished = 0
            return was_running

    # ---- internals ----------------------------------------------------------

    def _push_ready(self, name: str) -> None:
        heapq.heappush(self._ready, self._mark_ready(name))

    def _mark_ready(self, name: str) -> tuple[int, int, str]:
        """Make ``name`` ready; returns its ready-queue entry (higher priority first, then order)."""
        slot = self._slots[name]
        slot.phase = Phase.READY
        slot.retry_at = None
        return (-slot.task.priority, slot.order, name)

    def _finish(self, name: str, result: TaskResult) -> None:
        # A worklist, not recursion: a skip cascade down a long chain stays flat.
        work = [(name, result)]
        while work:
            done, done_result = work.pop()
            self._results[done] = done_result
            self._slots[done].phase = Phase.DONE
            self._unfinished -= 1
            self._newly_done.append(done)
            if done_result.in_doubt:  # it holds its dependents back until resolved
                self._in_doubt.add(done)
            else:
                self._release_dependents(done, work)

    def _release_dependents(self, name: str, work: list[tuple[str, TaskResult]]) -> None:
        for child in self._dependents.get(name, ()):
            slot = self._slots[child]
            if slot.phase is not Phase.DONE:
                slot.remaining -= 1
                if slot.remaining == 0:
                    skip = self._skip_result(child)
                    if skip is None:
                        self._push_ready(child)
                    else:
                        work.append((child, skip))

    def _skip_result(self, name: str) -> TaskResult | None:
        blocker = self._blocking_dependency(name)
        if blocker is None:
            return None
        dep, status = blocker
        verb = {"failure": "failed", "skipped": "was skipped"}.get(status, f"was {status}")
        return TaskResult.skipped(f"dependency '{dep}' {verb}")

    def _blocking_dependency(self, name: str) -> tuple[str, str] | None:
        for dep in self._slots[name].task.depends_on:
            result = self._results[dep]
            if result.status is TaskStatus.SUCCESS:
                continue
            if result.status is TaskStatus.FAILURE and self._slots[dep].task.continue_on_error:
                continue
            return dep, result.status.value
        return None
