"""The chaos checks catch what they are meant to catch (no Redis, no processes).

A checker that passes everything would make the chaos test green for nothing:
each test here breaks one invariant in an otherwise clean run and expects the
check to name it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from rqdag import TaskMetrics, TaskResult, TaskStatus
from tests.chaos.chaos_flow import FINAL, build_chaos_dag
from tests.chaos.invariants import Observed, check_run
from tests.chaos.plan import ChaosConfig, plan_faults

DEPS = {"a": (), "b": ("a",), "m": ("a",), "c": ("b", "m")}


def ok(attempt: int, started: float) -> TaskResult:
    return TaskResult(
        TaskStatus.SUCCESS,
        data={},
        metrics=TaskMetrics(started_at=started, finished_at=started + 0.1, attempt=attempt),
    )


def line(task: str, attempt: int, phase: str, at: float, **extra: Any) -> dict[str, Any]:
    inputs = sorted(DEPS[task])
    return {"task": task, "attempt": attempt, "phase": phase, "at": at, "inputs": inputs, **extra}


def ran(task: str, attempt: int, at: float) -> list[dict[str, Any]]:
    return [line(task, attempt, "start", at + 0.001), line(task, attempt, "end", at + 0.05, outcome="ok")]


def clean() -> Observed:
    """b lost its first attempt and succeeded on the second; everything else ran once."""
    results = {"a": ok(1, 10.0), "b": ok(2, 13.0), "m": ok(1, 11.0), "c": ok(1, 14.0)}
    ledger = [*ran("a", 1, 10.0), line("b", 1, "start", 11.0), *ran("m", 1, 11.0)]
    ledger += [*ran("b", 2, 13.0), *ran("c", 1, 14.0)]
    return Observed(
        deps=DEPS,
        at_most_once={"m"},
        results=results,
        ledger=ledger,
        run_status="succeeded",
        successes_seen=dict(results),
        budgets={"a": 2, "b": 2, "m": 1, "c": 2},
        outages=[(14.03, 14.2)],  # c's body ended in it; its result was written once Redis was back
    )


def test_a_clean_run_passes() -> None:
    assert check_run(clean()) == []


def test_a_run_resolved_after_doubt_passes() -> None:
    seen = clean()
    resolved = TaskResult(
        TaskStatus.FAILURE, message="resolved by chaos-driver", metrics=TaskMetrics(attempt=1)
    )
    skipped = TaskResult.skipped("dependency 'm' failed")
    seen.results = {**seen.results, "m": resolved, "c": skipped}
    seen.ledger = [x for x in seen.ledger if x["task"] not in ("m", "c")] + [line("m", 1, "start", 11.0)]
    seen.successes_seen = {k: v for k, v in seen.successes_seen.items() if k not in ("m", "c")}
    seen.in_doubt_seen, seen.resolutions = {"m"}, {"m": TaskStatus.FAILURE}
    seen.run_status = "failed"
    assert check_run(seen) == []


def unfinished(seen: Observed) -> None:
    seen.results = {k: v for k, v in seen.results.items() if k != "c"}
    seen.run_status = "running"


def ran_after_success(seen: Observed) -> None:
    seen.ledger = [*seen.ledger, line("b", 1, "start", 13.5)]


def later_attempt(seen: Observed) -> None:
    seen.ledger = [*seen.ledger, *ran("a", 2, 20.0)]


def amo_twice(seen: Observed) -> None:
    seen.results = {**seen.results, "m": ok(2, 12.0)}
    seen.successes_seen = {**seen.successes_seen, "m": seen.results["m"]}
    seen.ledger = [*seen.ledger, *ran("m", 2, 12.0)]


def no_ledger_for_success(seen: Observed) -> None:
    seen.ledger = [x for x in seen.ledger if x["task"] != "c"]


def same_attempt_twice(seen: Observed) -> None:
    seen.ledger = [*seen.ledger, line("a", 1, "start", 9.0)]


def missing_input(seen: Observed) -> None:
    seen.ledger = [{**x, "inputs": ["b"]} if x["task"] == "c" else x for x in seen.ledger]


def skipped_but_ran(seen: Observed) -> None:
    seen.results = {**seen.results, "c": TaskResult.skipped("dependency 'b' failed")}
    seen.successes_seen = {}


def success_changed(seen: Observed) -> None:
    seen.results = {**seen.results, "a": replace(seen.results["a"], data={"other": 1})}


def unexplained_failure(seen: Observed) -> None:
    failure = TaskResult(TaskStatus.FAILURE, "stored result is unreadable", metrics=TaskMetrics(attempt=1))
    seen.results = {**seen.results, "c": failure}
    seen.successes_seen = {}


def left_in_doubt(seen: Observed) -> None:
    seen.results = {**seen.results, "m": replace(seen.results["m"], in_doubt=True)}


def over_budget(seen: Observed) -> None:
    """b lost twice more: three starts of a task without retries."""
    seen.results = {**seen.results, "b": ok(3, 13.0)}
    seen.successes_seen = {**seen.successes_seen, "b": seen.results["b"]}
    seen.ledger = [
        *[x for x in seen.ledger if x["task"] != "b"],
        line("b", 1, "start", 11.0),
        line("b", 2, "start", 12.0),
        *ran("b", 3, 13.0),
    ]


def dropped_in_outage(seen: Observed) -> None:
    """c ended during the outage, its result was dropped and it ran again."""
    seen.results = {**seen.results, "c": ok(2, 16.0)}
    seen.successes_seen = {**seen.successes_seen, "c": seen.results["c"]}
    seen.ledger = [*seen.ledger, *ran("c", 2, 16.0)]


def lost_in_outage(seen: Observed) -> None:
    """m ended during an outage and became in doubt instead of keeping its success."""
    seen.outages = [(11.02, 11.2)]
    doubt = TaskResult(TaskStatus.FAILURE, "resolved by chaos-driver", metrics=TaskMetrics(attempt=1))
    seen.results = {**seen.results, "m": doubt}
    seen.successes_seen = {k: v for k, v in seen.successes_seen.items() if k != "m"}
    seen.in_doubt_seen, seen.resolutions = {"m"}, {"m": TaskStatus.FAILURE}


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (unfinished, "no terminal result"),
        (ran_after_success, "ran after its recorded success"),
        (later_attempt, "above the recorded attempt"),
        (amo_twice, "at-most-once task started 2 times"),
        (no_ledger_for_success, "has 0 ledger starts"),
        (same_attempt_twice, "started more than once"),
        (missing_input, "without the data of dependencies"),
        (skipped_but_ran, "skipped, but the ledger shows it started"),
        (success_changed, "the success seen during the run changed"),
        (unexplained_failure, "failure the chaos does not explain"),
        (left_in_doubt, "still in doubt"),
        (over_budget, "over its retry budget of 2"),
        (dropped_in_outage, "ended during the Redis outage 14.030..14.200, and its task started again"),
        (lost_in_outage, "but its result is not that success"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_each_broken_invariant_is_named(breakage: Callable[[Observed], None], expected: str) -> None:
    seen = clean()
    breakage(seen)
    problems = check_run(seen)
    assert any(expected in p for p in problems), problems


def test_an_attempt_whose_worker_was_stopped_in_the_outage_may_run_again() -> None:
    seen = clean()
    dropped_in_outage(seen)
    seen.ledger = [{**x, "pid": 41} if x["task"] == "c" and x["attempt"] == 1 else x for x in seen.ledger]
    seen.stopped = {41: 14.5}  # SIGKILLed right after the outage: its result was never written
    assert check_run(seen) == []


def test_the_dag_and_the_fault_plan_follow_the_seed() -> None:
    cfg = ChaosConfig(seed=7)
    first = build_chaos_dag(random.Random("7:dag"), 300, at_most_once=5, flaky=8)
    again = build_chaos_dag(random.Random("7:dag"), 300, at_most_once=5, flaky=8)
    assert first.deps == again.deps and first.params == again.params
    assert len(first.deps) == 300 and len(first.at_most_once) == 5 and len(first.flaky) == 8
    assert FINAL in first.deps and len(first.deps[FINAL]) > 1
    assert all(t.at_most_once == (t.name in first.at_most_once) for t in first.workflow.tasks)
    plan = plan_faults(random.Random("7:plan"), cfg)
    assert plan == plan_faults(random.Random("7:plan"), cfg)
    kinds = [f.kind for f in plan]
    assert kinds.count("worker") == cfg.worker_kills and kinds.count("coordinator") == cfg.coordinator_kills
    assert kinds.count("redis") == 1 and kinds.count("term") == cfg.worker_terms
    assert sorted(f.mode for f in plan if f.kind == "outage") == ["down", "frozen"]
    assert [f.threshold for f in plan] == sorted(f.threshold for f in plan)
