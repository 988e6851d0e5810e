"""The invariants a chaos run must keep, checked from Redis's results and the tasks' ledger.

Pure functions, no I/O: :func:`check_run` takes what the scenario observed and
returns one line per violation (empty when every invariant holds).

The ledger has a ``start`` line and an ``end`` line per attempt that reached
the task body. An attempt can be dispatched and never start (its worker died
first), and it can end in the ledger and still be run again (its worker died
before it reported), so the checks compare attempts, not counts of lines:

- every task has a terminal result, and the run finished;
- no task ran after its recorded success: no start of a later attempt, no other
  start at or after the success's own start, exactly one start of that attempt;
- no at-most-once task started twice, and no task started more often than its
  retry budget allows (``1 + max(retry.attempts, 1)``: every lost attempt counts,
  whatever the cause: a worker SIGKILLed, a task handed back on SIGTERM, a
  coordinator that took the run over in between);
- an attempt whose finish step met a Redis outage (the ledger's ``end`` in the
  outage's window: from when the driver held finished tasks back to Redis's
  return) kept its result: its task never started again and its success is the
  recorded result, unless its worker was killed before it could write it
  (within FINISH_GRACE_S of the outage's end);
- a success in Redis has the ledger start and end of its attempt; no attempt
  started twice; no start carries an attempt number above the recorded one;
- a skipped task never started, and has a dependency that did not succeed;
- a task started with the data of every dependency (all of them had succeeded);
- a success once seen never changed;
- only at-most-once tasks were ever in doubt, each was resolved as the driver
  chose, and no result is left in doubt;
- a failure is explained by the chaos (a lost worker, a flaky task's planned
  error); nothing is cancelled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rqdag import TaskResult, TaskStatus

FINISHED = ("succeeded", "failed")
EXPLAINED_FAILURES = ("lost while the task ran", "FlakyError", "handed the task back")
RESOLVED_PREFIX = "resolved by"
FINISH_GRACE_S = 5.0  # a result held through an outage is written this soon after Redis is back


@dataclass
class Observed:
    """Everything the checks need, as the scenario saw it."""

    deps: Mapping[str, Sequence[str]]
    at_most_once: set[str]
    results: Mapping[str, TaskResult]
    ledger: Sequence[Mapping[str, Any]]
    run_status: str
    successes_seen: Mapping[str, TaskResult] = field(default_factory=dict)
    in_doubt_seen: set[str] = field(default_factory=set)
    resolutions: Mapping[str, TaskStatus] = field(default_factory=dict)
    budgets: Mapping[str, int] = field(default_factory=dict)  # task -> most starts allowed
    outages: Sequence[tuple[float, float]] = ()  # wall-clock windows whose finish steps met an outage
    stopped: Mapping[int, float] = field(default_factory=dict)  # worker pid -> when the driver stopped it

    def ended_in(self, start: float, end: float) -> list[Mapping[str, Any]]:
        """The ledger's 'ok' ends inside ``[start, end]``: attempts whose finish met that outage."""
        ends = [x for x in self.ledger if x.get("phase") == "end" and x.get("outcome") == "ok"]
        return [x for x in ends if start <= float(x["at"]) <= end]


class Starts:
    """The ledger's lines grouped by task: start lines and end lines."""

    def __init__(self, ledger: Sequence[Mapping[str, Any]]) -> None:
        self.starts: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        self.ends: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for line in ledger:
            target = self.starts if line.get("phase") == "start" else self.ends
            target[str(line["task"])].append(line)

    def attempts(self, task: str) -> list[int]:
        """Attempt numbers of the task's starts, in ledger order."""
        return [int(line["attempt"]) for line in self.starts.get(task, [])]


def check_run(seen: Observed) -> list[str]:
    """Every violated invariant, one line each."""
    starts = Starts(seen.ledger)
    out = _check_finished(seen)
    out += _check_unknown_tasks(seen, starts)
    for task in seen.deps:
        out += _check_task(seen, starts, task)
    out += _check_outage_finishes(seen, starts)
    return out


def _check_finished(seen: Observed) -> list[str]:
    out = []
    if seen.run_status not in FINISHED:
        out.append(f"run: status is {seen.run_status!r}, expected one of {FINISHED}")
    missing = sorted(set(seen.deps) - set(seen.results))
    if missing:
        out.append(f"run: {len(missing)} tasks have no terminal result: {missing[:20]}")
    doubtful = sorted(t for t, r in seen.results.items() if r.in_doubt)
    if doubtful:
        out.append(f"run: results still in doubt at the end: {doubtful}")
    return out


def _check_unknown_tasks(seen: Observed, starts: Starts) -> list[str]:
    unknown = sorted(set(starts.starts) - set(seen.deps))
    return [f"ledger: starts of tasks that are not in the DAG: {unknown}"] if unknown else []


def _check_task(seen: Observed, starts: Starts, task: str) -> list[str]:
    result = seen.results.get(task)
    attempts = starts.attempts(task)
    out = _check_attempt_numbers(task, attempts, result)
    out += _check_inputs(seen, starts, task)
    out += _check_starts(seen, task, attempts)
    if task in seen.in_doubt_seen:
        out += _check_in_doubt(seen, task, result)
    earlier = seen.successes_seen.get(task)
    if earlier is not None and result != earlier:
        out.append(f"{task}: the success seen during the run changed: {earlier!r} became {result!r}")
    if result is None:
        return out
    if result.status is TaskStatus.SUCCESS and not _resolved(result):
        out += _check_success(task, starts, result)
    elif result.status is TaskStatus.SKIPPED:
        out += _check_skipped(seen, task, attempts)
    elif result.status is TaskStatus.FAILURE and not _resolved(result):
        if not any(why in (result.message or "") for why in EXPLAINED_FAILURES):
            out.append(f"{task}: failure the chaos does not explain: {result.message!r}")
    elif result.status is TaskStatus.CANCELLED:
        out.append(f"{task}: cancelled, but nobody cancelled the run: {result.message!r}")
    return out


def _check_starts(seen: Observed, task: str, attempts: list[int]) -> list[str]:
    """At most one start of an at-most-once task; at most its retry budget of any other."""
    if task in seen.at_most_once:
        if len(attempts) > 1:
            return [f"{task}: at-most-once task started {len(attempts)} times (attempts {attempts})"]
        return []
    budget = seen.budgets.get(task)
    if budget is not None and len(attempts) > budget:
        return [f"{task}: started {len(attempts)} times, over its retry budget of {budget} ({attempts})"]
    return []


def _check_outage_finishes(seen: Observed, starts: Starts) -> list[str]:
    """Every attempt that ended during an outage (its worker left alive) kept its result."""
    out = []
    for start, end in seen.outages:
        for line in seen.ended_in(start, end):
            stopped = seen.stopped.get(int(line.get("pid", -1)))
            if stopped is not None and stopped < end + FINISH_GRACE_S:
                continue  # its worker was stopped before the result could be written
            task, attempt = str(line["task"]), int(line["attempt"])
            where = f"{task}: attempt {attempt} ended during the Redis outage {start:.3f}..{end:.3f}"
            later = [a for a in starts.attempts(task) if a > attempt]
            result = seen.results.get(task)
            if later:
                out.append(f"{where}, and its task started again (attempts {later})")
            elif result is None or result.status is not TaskStatus.SUCCESS or _resolved(result):
                out.append(f"{where}, but its result is not that success: {result!r}")
            elif result.metrics.attempt != attempt:
                out.append(f"{where}, but the recorded success is of attempt {result.metrics.attempt}")
    return out


def _resolved(result: TaskResult) -> bool:
    return (result.message or "").startswith(RESOLVED_PREFIX)


def _check_attempt_numbers(task: str, attempts: list[int], result: TaskResult | None) -> list[str]:
    out = []
    twice = sorted({a for a in attempts if attempts.count(a) > 1})
    if twice:
        out.append(f"{task}: attempt(s) {twice} started more than once (starts: {attempts})")
    recorded = result.metrics.attempt if result is not None else None
    if recorded is not None and attempts and max(attempts) > recorded:
        out.append(
            f"{task}: the ledger has a start of attempt {max(attempts)}, above the recorded attempt "
            f"{recorded} ({result.status.value if result else '?'})"
        )
    return out


def _check_success(task: str, starts: Starts, result: TaskResult) -> list[str]:
    """The recorded success's attempt ran once, nothing ran after it began."""
    attempt = result.metrics.attempt
    began = result.metrics.started_at
    lines = starts.starts.get(task, [])
    own = [line for line in lines if int(line["attempt"]) == attempt]
    out = []
    if len(own) != 1:
        out.append(f"{task}: success of attempt {attempt} has {len(own)} ledger starts of that attempt")
    ended = [
        line
        for line in starts.ends.get(task, [])
        if int(line["attempt"]) == attempt and line.get("outcome") == "ok"
    ]
    if not ended:
        out.append(f"{task}: success of attempt {attempt} but the ledger has no 'ok' end of that attempt")
    if began is None:
        out.append(f"{task}: success of attempt {attempt} has no metrics.started_at")
        return out
    later = [
        (int(line["attempt"]), round(float(line["at"]) - began, 3))
        for line in lines
        if int(line["attempt"]) != attempt and float(line["at"]) >= began
    ]
    if later:
        out.append(
            f"{task}: ran after its recorded success (attempt {attempt} began at {began:.3f}): "
            f"starts (attempt, seconds after) {later}"
        )
    return out


def _check_skipped(seen: Observed, task: str, attempts: list[int]) -> list[str]:
    out = []
    if attempts:
        out.append(f"{task}: skipped, but the ledger shows it started (attempts {attempts})")
    blockers = [
        d for d in seen.deps[task] if (r := seen.results.get(d)) is None or r.status is not TaskStatus.SUCCESS
    ]
    if not blockers:
        out.append(f"{task}: skipped although every dependency succeeded")
    return out


def _check_inputs(seen: Observed, starts: Starts, task: str) -> list[str]:
    want = sorted(seen.deps[task])
    wrong = [
        (int(line["attempt"]), sorted(set(want) - set(line.get("inputs", []))))
        for line in starts.starts.get(task, [])
        if sorted(line.get("inputs", [])) != want
    ]
    return [f"{task}: started without the data of dependencies (attempt, missing): {wrong}"] if wrong else []


def _check_in_doubt(seen: Observed, task: str, result: TaskResult | None) -> list[str]:
    out = []
    if task not in seen.at_most_once:
        out.append(f"{task}: in doubt, but it is not an at-most-once task")
    chosen = seen.resolutions.get(task)
    if chosen is None:
        out.append(f"{task}: was in doubt and never resolved")
    elif result is None or result.status is not chosen or not _resolved(result):
        out.append(f"{task}: resolved as {chosen.value}, but its result is {result!r}")
    return out
