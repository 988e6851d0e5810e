"""TaskStateManager driven directly: no threads, no clock, no I/O."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import pytest

from rqdag.coordinator.phases import Dispatch, Outcome, Phase
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.task import Retry, Task
from rqdag.shared.model.vocabulary import TaskStatus


def noop(ctx: object) -> None:
    """A task function that is never called here."""


def task(name: str, *deps: str, **kwargs: object) -> Task:
    return Task(name, noop, depends_on=deps, **kwargs)  # type: ignore[arg-type]


def names(batch: list[Dispatch]) -> list[str]:
    return [d.task.name for d in batch]


Outcomes = Callable[[str, int], TaskResult]


def succeed_with_name(name: str, attempt: int) -> TaskResult:
    return TaskResult.success(data=name)


def drive(sm: TaskStateManager, outcome: Outcomes = succeed_with_name, limit: int = 10_000) -> list[Dispatch]:
    """Run the state machine to the end, jumping the clock to each wake-up; returns every dispatch."""
    now = 0.0
    started: list[Dispatch] = []
    while not sm.is_finished():
        batch = sm.take_ready(now, limit)
        if not batch:
            wake = sm.next_wakeup()
            assert wake is not None and wake > now, "nothing ready, nothing running: the run is stuck"
            now = wake
            continue
        for d in batch:
            started.append(d)
            sm.complete(d.task.name, d.token, outcome(d.task.name, d.attempt), now)
    return started


def fail_names(*failing: str) -> Outcomes:
    def outcome(name: str, attempt: int) -> TaskResult:
        return TaskResult.failure(f"{name} broke") if name in failing else TaskResult.success(data=name)

    return outcome


# ---- readiness ------------------------------------------------------------------------


def test_only_tasks_without_dependencies_are_ready_at_first() -> None:
    sm = TaskStateManager([task("a"), task("b", "a"), task("c")])
    assert names(sm.take_ready(0.0, 10)) == ["a", "c"]
    assert sm.phase("b") is Phase.WAITING
    assert sm.take_ready(0.0, 10) == []


def test_dependent_becomes_ready_when_all_dependencies_succeed_and_gets_their_data() -> None:
    sm = TaskStateManager([task("a"), task("b"), task("c", "a", "b")])
    a, b = sm.take_ready(0.0, 10)
    assert sm.complete("a", a.token, TaskResult.success(data={"rows": 3}), 1.0) is Outcome.DONE
    assert sm.take_ready(1.0, 10) == []
    assert sm.phase("c") is Phase.WAITING
    sm.complete("b", b.token, TaskResult.success(data=[1, 2]), 2.0)
    (c,) = sm.take_ready(2.0, 10)
    assert c.task.name == "c"
    assert c.attempt == 1
    assert c.inputs == {"a": {"rows": 3}, "b": [1, 2]}
    assert sm.inputs_for("c") == {"a": {"rows": 3}, "b": [1, 2]}


def test_take_ready_marks_tasks_running_with_a_fresh_token() -> None:
    sm = TaskStateManager([task("a"), task("b")])
    a, b = sm.take_ready(0.0, 10)
    assert sm.phase("a") is Phase.RUNNING
    assert sm.running_count == 2
    assert sm.running() == [("a", a.token), ("b", b.token)]
    assert a.token and b.token and a.token != b.token
    assert sm.attempt("a") == 1


def test_limit_caps_how_many_tasks_start() -> None:
    sm = TaskStateManager([task(f"t{i}") for i in range(5)])
    assert sm.take_ready(0.0, 0) == []
    assert len(sm.take_ready(0.0, 2)) == 2
    assert sm.running_count == 2
    assert len(sm.take_ready(0.0, 10)) == 3


def test_constructor_validates_the_graph() -> None:
    with pytest.raises(WorkflowDefinitionError, match="a -> b -> a"):
        TaskStateManager([task("a", "b"), task("b", "a")])


def test_an_empty_workflow_is_finished_at_once() -> None:
    sm = TaskStateManager([])
    assert sm.is_finished()
    assert sm.snapshot() == {}
    assert sm.next_wakeup() is None


# ---- priority -------------------------------------------------------------------------


def test_higher_priority_first_when_slots_are_scarce_ties_in_definition_order() -> None:
    sm = TaskStateManager(
        [
            task("low", priority=0),
            task("high", priority=10),
            task("mid", priority=5),
            task("high_too", priority=10),
            task("negative", priority=-1),
        ]
    )
    order = [names(sm.take_ready(0.0, 1)) for _ in range(5)]
    assert order == [["high"], ["high_too"], ["mid"], ["low"], ["negative"]]


def test_priority_orders_tasks_that_become_ready_later() -> None:
    sm = TaskStateManager([task("root"), task("a", "root", priority=1), task("b", "root", priority=7)])
    (root,) = sm.take_ready(0.0, 1)
    sm.complete("root", root.token, TaskResult.success(), 1.0)
    assert names(sm.take_ready(1.0, 1)) == ["b"]
    assert names(sm.take_ready(1.0, 1)) == ["a"]


def test_a_due_retry_competes_by_priority() -> None:
    sm = TaskStateManager(
        [task("flaky", priority=1, retry=Retry(attempts=1)), task("urgent", priority=9), task("later")]
    )
    flaky = sm.take_ready(0.0, 1)
    assert names(flaky) == ["urgent"]
    (flaky_d,) = sm.take_ready(0.0, 1)
    assert flaky_d.task.name == "flaky"
    assert sm.complete("flaky", flaky_d.token, TaskResult.failure("x"), 0.0) is Outcome.RETRY
    # the retry is due now and outranks "later"
    again = sm.take_ready(0.0, 1)
    assert names(again) == ["flaky"]
    assert again[0].attempt == 2


# ---- skip cascade ---------------------------------------------------------------------


def test_failure_skips_dependents_transitively_and_names_the_dependency() -> None:
    sm = TaskStateManager([task("a"), task("b", "a"), task("c", "b"), task("d")])
    started = drive(sm, fail_names("a"))
    assert sorted(names(started)) == ["a", "d"]
    results = sm.snapshot()
    assert results["a"].status is TaskStatus.FAILURE
    assert results["b"] == TaskResult.skipped("dependency 'a' failed")
    assert results["c"] == TaskResult.skipped("dependency 'b' was skipped")
    assert results["d"].status is TaskStatus.SUCCESS


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (TaskResult.failure("no"), "dependency 'a' failed"),
        (TaskResult.skipped("condition is false"), "dependency 'a' was skipped"),
        (TaskResult.cancelled("stopped"), "dependency 'a' was cancelled"),
    ],
)
def test_skip_message_names_the_dependency_and_what_happened_to_it(result: TaskResult, message: str) -> None:
    sm = TaskStateManager([task("a"), task("b", "a")])
    (a,) = sm.take_ready(0.0, 10)
    sm.complete("a", a.token, result, 1.0)
    assert sm.result("b") == TaskResult.skipped(message)
    assert sm.is_finished()


def test_skip_message_names_the_dependency_that_did_not_succeed() -> None:
    sm = TaskStateManager([task("ok1"), task("bad"), task("ok2"), task("join", "ok1", "bad", "ok2")])
    drive(sm, fail_names("bad"))
    assert sm.result("join") == TaskResult.skipped("dependency 'bad' failed")


def test_dependent_is_skipped_only_after_all_its_dependencies_are_terminal() -> None:
    sm = TaskStateManager([task("bad"), task("slow"), task("join", "bad", "slow")])
    bad, slow = sm.take_ready(0.0, 10)
    sm.complete("bad", bad.token, TaskResult.failure("x"), 1.0)
    assert sm.result("join") is None
    sm.complete("slow", slow.token, TaskResult.success(), 2.0)
    assert sm.result("join") == TaskResult.skipped("dependency 'bad' failed")


def test_continue_on_error_on_the_failing_task_lets_dependents_run() -> None:
    sm = TaskStateManager([task("a", continue_on_error=True), task("b", "a"), task("c", "b")])
    started = drive(sm, fail_names("a"))
    assert names(started) == ["a", "b", "c"]
    b = next(d for d in started if d.task.name == "b")
    assert b.inputs == {}, "a failed: it has no data to hand on"
    assert sm.result("a").status is TaskStatus.FAILURE  # type: ignore[union-attr]
    assert sm.result("b").status is TaskStatus.SUCCESS  # type: ignore[union-attr]
    assert sm.result("c").status is TaskStatus.SUCCESS  # type: ignore[union-attr]


def test_continue_on_error_on_the_dependent_does_not_excuse_a_failed_dependency() -> None:
    sm = TaskStateManager([task("a"), task("b", "a", continue_on_error=True)])
    started = drive(sm, fail_names("a"))
    assert names(started) == ["a"]
    assert sm.result("b") == TaskResult.skipped("dependency 'a' failed")


@pytest.mark.parametrize("result", [TaskResult.skipped("no"), TaskResult.cancelled("no")])
def test_continue_on_error_covers_failure_only(result: TaskResult) -> None:
    sm = TaskStateManager([task("a", continue_on_error=True), task("b", "a")])
    (a,) = sm.take_ready(0.0, 10)
    sm.complete("a", a.token, result, 0.0)
    assert sm.result("b").status is TaskStatus.SKIPPED  # type: ignore[union-attr]


def test_long_chain_cascade_does_not_hit_the_recursion_limit() -> None:
    n = 5000
    assert n > sys.getrecursionlimit()
    sm = TaskStateManager([task("t0")] + [task(f"t{i}", f"t{i - 1}") for i in range(1, n)])
    (first,) = sm.take_ready(0.0, 10)
    sm.complete("t0", first.token, TaskResult.failure("broken"), 1.0)
    assert sm.is_finished()
    results = sm.snapshot()
    assert len(results) == n
    assert results[f"t{n - 1}"] == TaskResult.skipped(f"dependency 't{n - 2}' was skipped")
    assert len(sm.take_newly_done()) == n


def test_long_chain_cascade_on_hydrate_does_not_hit_the_recursion_limit() -> None:
    n = 5000
    sm = TaskStateManager([task("t0")] + [task(f"t{i}", f"t{i - 1}") for i in range(1, n)])
    sm.hydrate({"t0": TaskResult.failure("old")}, keep_all=True)
    assert sm.is_finished()
    assert sm.result("t1") == TaskResult.skipped("dependency 't0' failed")
    assert sm.result(f"t{n - 1}") == TaskResult.skipped(f"dependency 't{n - 2}' was skipped")


def test_long_chain_runs_to_success() -> None:
    n = 5000
    sm = TaskStateManager([task("t0")] + [task(f"t{i}", f"t{i - 1}") for i in range(1, n)])
    started = drive(sm)
    assert len(started) == n
    assert started[-1].inputs == {f"t{n - 2}": f"t{n - 2}"}
    assert all(r.status is TaskStatus.SUCCESS for r in sm.snapshot().values())


# ---- retries --------------------------------------------------------------------------


def test_attempts_two_means_at_most_three_runs() -> None:
    sm = TaskStateManager([task("a", retry=Retry(attempts=2))])
    outcomes = []
    for expected_attempt in (1, 2, 3):
        (d,) = sm.take_ready(0.0, 10)
        assert d.attempt == expected_attempt
        assert sm.attempt("a") == expected_attempt
        outcomes.append(sm.complete("a", d.token, TaskResult.failure(f"fail {d.attempt}"), 0.0))
        if expected_attempt < 3:
            assert sm.phase("a") is Phase.RETRY_WAIT
            assert sm.result("a") is None
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DONE]
    assert sm.take_ready(0.0, 10) == []
    final = sm.result("a")
    assert final is not None
    assert final.status is TaskStatus.FAILURE
    assert final.message == "fail 3"
    assert final.metrics.attempt == 3


def test_no_retry_by_default() -> None:
    sm = TaskStateManager([task("a")])
    (d,) = sm.take_ready(0.0, 10)
    assert sm.complete("a", d.token, TaskResult.failure("x"), 0.0) is Outcome.DONE
    assert sm.result("a").metrics.attempt == 1  # type: ignore[union-attr]


def test_a_retry_that_succeeds_records_its_attempt_number() -> None:
    sm = TaskStateManager([task("a", retry=Retry(attempts=5)), task("b", "a")])

    def outcome(name: str, attempt: int) -> TaskResult:
        if name == "a" and attempt < 3:
            return TaskResult.failure("not yet")
        return TaskResult.success(data=attempt)

    started = drive(sm, outcome)
    assert [(d.task.name, d.attempt) for d in started] == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    assert sm.result("a") == dataclasses.replace(TaskResult.success(data=3), metrics=TaskMetrics(attempt=3))
    assert started[-1].inputs == {"a": 3}


@pytest.mark.parametrize(
    "result", [TaskResult.skipped("cond"), TaskResult.cancelled("c"), TaskResult.success()]
)
def test_only_failures_are_retried(result: TaskResult) -> None:
    sm = TaskStateManager([task("a", retry=Retry(attempts=3))])
    (d,) = sm.take_ready(0.0, 10)
    assert sm.complete("a", d.token, result, 0.0) is Outcome.DONE
    assert sm.result("a").status is result.status  # type: ignore[union-attr]


def test_fixed_delay_holds_the_retry_until_due() -> None:
    sm = TaskStateManager([task("a", retry=Retry(attempts=2, delay_s=2.0))])
    (d,) = sm.take_ready(10.0, 10)
    assert sm.complete("a", d.token, TaskResult.failure("x"), 10.5) is Outcome.RETRY
    assert sm.next_wakeup() == 12.5
    assert sm.take_ready(12.4, 10) == []
    (d2,) = sm.take_ready(12.5, 10)
    assert d2.attempt == 2
    sm.complete("a", d2.token, TaskResult.failure("x"), 20.0)
    assert sm.next_wakeup() == 22.0


def test_exponential_delay_doubles_and_is_capped_by_max_delay() -> None:
    retry = Retry(attempts=4, delay_s=1.0, backoff="exponential", max_delay_s=3.0)
    sm = TaskStateManager([task("a", retry=retry)])
    now = 0.0
    waits = []
    for _ in range(4):
        (d,) = sm.take_ready(now, 10)
        assert sm.complete("a", d.token, TaskResult.failure("x"), now) is Outcome.RETRY
        wake = sm.next_wakeup()
        assert wake is not None
        waits.append(wake - now)
        now = wake
    assert waits == [1.0, 2.0, 3.0, 3.0]
    (d,) = sm.take_ready(now, 10)
    assert d.attempt == 5
    assert sm.complete("a", d.token, TaskResult.failure("x"), now) is Outcome.DONE


def test_exponential_delay_without_cap() -> None:
    sm = TaskStateManager([task("a", retry=Retry(attempts=3, delay_s=0.5, backoff="exponential"))])
    now = 0.0
    waits = []
    for _ in range(3):
        (d,) = sm.take_ready(now, 10)
        sm.complete("a", d.token, TaskResult.failure("x"), now)
        wake = sm.next_wakeup()
        assert wake is not None
        waits.append(wake - now)
        now = wake
    assert waits == [0.5, 1.0, 2.0]


def test_the_attempt_in_metrics_is_the_state_machines() -> None:
    sm = TaskStateManager([task("a", retry=Retry(attempts=1))])
    (d,) = sm.take_ready(0.0, 10)
    sm.complete("a", d.token, TaskResult.failure("x"), 0.0)
    (d,) = sm.take_ready(0.0, 10)
    reported = dataclasses.replace(TaskResult.success(), metrics=TaskMetrics(started_at=1.0, attempt=99))
    sm.complete("a", d.token, reported, 0.0)
    result = sm.result("a")
    assert result is not None
    assert result.metrics.attempt == 2
    assert result.metrics.started_at == 1.0


# ---- stale tokens, timeouts -----------------------------------------------------------


def test_a_stale_token_is_ignored() -> None:
    sm = TaskStateManager([task("a", retry=Retry(attempts=1)), task("b")])
    a1, _ = sm.take_ready(0.0, 10)
    assert sm.complete("a", "not-the-token", TaskResult.success(), 0.0) is Outcome.STALE
    assert sm.phase("a") is Phase.RUNNING
    assert sm.complete("a", a1.token, TaskResult.failure("x"), 0.0) is Outcome.RETRY
    # the first attempt answers again, late: ignored
    assert sm.complete("a", a1.token, TaskResult.success(), 0.0) is Outcome.STALE
    assert sm.phase("a") is Phase.RETRY_WAIT
    (a2,) = sm.take_ready(0.0, 10)
    assert sm.complete("a", a1.token, TaskResult.success(data="late"), 0.0) is Outcome.STALE
    assert sm.complete("a", a2.token, TaskResult.success(data="current"), 0.0) is Outcome.DONE
    assert sm.complete("a", a2.token, TaskResult.failure("again"), 0.0) is Outcome.STALE
    assert sm.result("a").data == "current"  # type: ignore[union-attr]
    assert sm.complete("nope", a2.token, TaskResult.success(), 0.0) is Outcome.STALE


def test_expired_lists_running_tasks_past_their_deadline() -> None:
    sm = TaskStateManager([task("a", timeout_s=5.0), task("b"), task("c", timeout_s=2.0)])
    batch = {d.task.name: d for d in sm.take_ready(1.0, 10)}
    assert batch["a"].deadline == 6.0
    assert batch["b"].deadline is None
    assert batch["c"].deadline == 3.0
    assert sm.next_wakeup() == 3.0
    assert sm.expired(2.9) == []
    assert sm.expired(3.0) == [("c", batch["c"].token)]
    assert sm.expired(100.0) == [("a", batch["a"].token), ("c", batch["c"].token)]
    sm.complete("c", batch["c"].token, TaskResult.success(), 3.0)
    assert sm.next_wakeup() == 6.0
    assert sm.expired(100.0) == [("a", batch["a"].token)]


def test_next_wakeup_is_none_without_retries_or_deadlines() -> None:
    sm = TaskStateManager([task("a")])
    assert sm.next_wakeup() is None
    sm.take_ready(0.0, 10)
    assert sm.next_wakeup() is None


def test_next_wakeup_is_the_earliest_of_retries_and_deadlines() -> None:
    sm = TaskStateManager([task("r", retry=Retry(attempts=1, delay_s=4.0)), task("t", timeout_s=10.0)])
    batch = {d.task.name: d for d in sm.take_ready(0.0, 10)}
    assert sm.next_wakeup() == 10.0
    sm.complete("r", batch["r"].token, TaskResult.failure("x"), 1.0)
    assert sm.next_wakeup() == 5.0


# ---- cancel_all -----------------------------------------------------------------------


def test_cancel_all_cancels_every_task_without_a_result() -> None:
    sm = TaskStateManager(
        [task("done"), task("running"), task("waiting", "running"), task("retrying", retry=Retry(2, 60.0))]
    )
    batch = {d.task.name: d for d in sm.take_ready(0.0, 10)}
    sm.complete("done", batch["done"].token, TaskResult.success(data=1), 0.0)
    sm.complete("retrying", batch["retrying"].token, TaskResult.failure("x"), 0.0)
    sm.take_newly_done()

    running = sm.cancel_all("stop")

    assert running == [("running", batch["running"].token)]
    assert sm.is_finished()
    results = sm.snapshot()
    assert results["done"] == dataclasses.replace(TaskResult.success(data=1), metrics=TaskMetrics(attempt=1))
    assert results["running"].status is TaskStatus.CANCELLED
    assert results["running"].message == "stop while running"
    assert results["running"].metrics.attempt == 1
    assert results["waiting"] == TaskResult.cancelled("cancelled before it started: stop")
    assert results["retrying"].status is TaskStatus.CANCELLED
    assert results["retrying"].metrics.attempt == 1
    assert results["retrying"].message == "stop while waiting to retry"
    assert sm.running_count == 0
    assert sm.take_ready(1000.0, 10) == []
    assert sm.next_wakeup() is None
    assert sorted(n for n, _ in sm.take_newly_done()) == ["retrying", "running", "waiting"]
    # the cancelled attempt answers later: ignored
    assert sm.complete("running", batch["running"].token, TaskResult.success(), 1.0) is Outcome.STALE
    assert sm.result("running").status is TaskStatus.CANCELLED  # type: ignore[union-attr]


def test_cancel_all_on_a_finished_run_changes_nothing() -> None:
    sm = TaskStateManager([task("a")])
    drive(sm)
    before = sm.snapshot()
    assert sm.cancel_all("late") == []
    assert sm.snapshot() == before


# ---- hydrate ---------------------------------------------------------------------------


def snapshot_of(**statuses: str) -> dict[str, TaskResult]:
    out = {}
    for name, status in statuses.items():
        out[name] = TaskResult(TaskStatus(status), message=f"old {status}", data=f"old-{name}")
    return out


def test_hydrate_keeps_successes_only_and_reevaluates_the_rest() -> None:
    tasks = [task("a"), task("b", "a"), task("c", "b"), task("d", "a"), task("e")]
    sm = TaskStateManager(tasks)
    unknown = sm.hydrate(snapshot_of(a="success", b="failure", c="cancelled", d="skipped"))
    assert unknown == []
    assert sm.snapshot() == {"a": snapshot_of(a="success")["a"]}
    assert sm.phase("a") is Phase.DONE
    first = {d.task.name: d for d in sm.take_ready(0.0, 10)}
    assert sorted(first) == ["b", "d", "e"]
    assert first["b"].inputs == {"a": "old-a"}
    assert first["d"].inputs == {"a": "old-a"}
    for d in first.values():
        sm.complete(d.task.name, d.token, TaskResult.success(data=d.task.name), 0.0)
    (c,) = sm.take_ready(0.0, 10)
    assert c.task.name == "c"
    assert c.inputs == {"b": "b"}


def test_hydrate_keep_all_keeps_every_terminal_result() -> None:
    snap = snapshot_of(a="success", b="failure", c="cancelled", d="skipped")
    sm = TaskStateManager([task("a"), task("b", "a"), task("c"), task("d"), task("e", "b")])
    sm.hydrate(snap, keep_all=True)
    assert {n: sm.result(n) for n in "abcd"} == snap
    assert sm.take_ready(0.0, 10) == []
    assert sm.result("e") == TaskResult.skipped("dependency 'b' failed")
    assert sm.is_finished()


def test_hydrate_returns_the_names_it_does_not_know() -> None:
    sm = TaskStateManager([task("a")])
    assert sm.hydrate(snapshot_of(a="success", ghost="success", old="failure")) == ["ghost", "old"]
    assert sm.snapshot() == {"a": snapshot_of(a="success")["a"]}
    assert sm.is_finished()


def test_hydrate_fully_successful_snapshot_leaves_nothing_to_run() -> None:
    sm = TaskStateManager([task("a"), task("b", "a")])
    sm.hydrate(snapshot_of(a="success", b="success"))
    assert sm.is_finished()
    assert sm.take_ready(0.0, 10) == []
    assert sm.take_newly_done() == [], "hydrated results are not news"


def test_hydrate_keeps_a_success_even_when_its_dependency_runs_again() -> None:
    sm = TaskStateManager([task("a"), task("b", "a")])
    sm.hydrate(snapshot_of(a="failure", b="success"))
    started = drive(sm, fail_names("a"))
    assert names(started) == ["a"]
    assert sm.result("b") == snapshot_of(b="success")["b"]


def test_hydrate_keeps_the_attempt_count_of_successes() -> None:
    sm = TaskStateManager([task("a"), task("b")])
    kept = dataclasses.replace(TaskResult.success(), metrics=TaskMetrics(attempt=3))
    sm.hydrate({"a": kept, "b": dataclasses.replace(TaskResult.failure("x"), metrics=TaskMetrics(attempt=4))})
    assert sm.attempt("a") == 3
    (b,) = sm.take_ready(0.0, 10)
    assert b.attempt == 1, "a failure from the snapshot is a fresh start"


def test_hydrate_after_the_run_started_is_refused() -> None:
    sm = TaskStateManager([task("a"), task("b")])
    sm.take_ready(0.0, 1)
    with pytest.raises(RuntimeError, match="before the run starts"):
        sm.hydrate(snapshot_of(b="success"))


# ---- snapshot and news ----------------------------------------------------------------


def test_snapshot_is_a_copy() -> None:
    sm = TaskStateManager([task("a")])
    drive(sm)
    snap = sm.snapshot()
    snap["a"] = TaskResult.failure("tampered")
    snap["x"] = TaskResult.success()
    assert sm.snapshot() == {
        "a": dataclasses.replace(TaskResult.success(data="a"), metrics=TaskMetrics(attempt=1))
    }


def test_snapshot_holds_terminal_results_only() -> None:
    sm = TaskStateManager([task("a"), task("b", retry=Retry(attempts=1)), task("c", "a")])
    batch = {d.task.name: d for d in sm.take_ready(0.0, 10)}
    sm.complete("b", batch["b"].token, TaskResult.failure("x"), 0.0)
    assert sm.snapshot() == {}, "running, retry-waiting and waiting tasks have no result"
    sm.complete("a", batch["a"].token, TaskResult.success(), 0.0)
    assert set(sm.snapshot()) == {"a"}


def test_take_newly_done_reports_each_result_once_in_order() -> None:
    sm = TaskStateManager([task("a"), task("b", "a"), task("c")])
    a, c = sm.take_ready(0.0, 10)
    sm.complete("c", c.token, TaskResult.success(), 0.0)
    sm.complete("a", a.token, TaskResult.failure("x"), 0.0)
    done = sm.take_newly_done()
    assert [n for n, _ in done] == ["c", "a", "b"]
    assert done[2][1] == TaskResult.skipped("dependency 'a' failed")
    assert sm.take_newly_done() == []


def test_adopt_marks_an_attempt_found_in_flight_as_running() -> None:
    sm = TaskStateManager([task("a"), task("b")])
    sm.adopt("a", 2, "tok-a", deadline=9.0)
    assert sm.phase("a") is Phase.RUNNING
    assert sm.attempt("a") == 2
    assert names(sm.take_ready(0.0, 10)) == ["b"]
    assert sm.next_wakeup() == 9.0
    assert sm.complete("a", "tok-a", TaskResult.success(), 1.0) is Outcome.DONE
    assert sm.result("a").metrics.attempt == 2  # type: ignore[union-attr]
