"""The state machine under faults: lost workers, hand-backs, in-doubt tasks and resolutions."""

from __future__ import annotations

from rqdag.coordinator.phases import Outcome, Phase
from rqdag.coordinator.state import TaskStateManager
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Retry, Task
from rqdag.shared.model.vocabulary import TaskStatus


def noop(ctx: object) -> None:
    """Never called."""


def start_all(sm: TaskStateManager, now: float = 0.0) -> dict[str, str]:
    return {d.task.name: d.token for d in sm.take_ready(now, 100)}


def lost() -> TaskResult:
    return TaskResult.failure("worker w lost while the task ran (no heartbeat for 31s)")


def test_a_lost_at_least_once_task_runs_again_even_without_retries() -> None:
    sm = TaskStateManager([Task("a", noop)])
    tokens = start_all(sm)
    assert sm.complete("a", tokens["a"], lost(), 1.0, lost=True) is Outcome.RETRY
    again = start_all(sm, 1.0)
    assert sm.attempt("a") == 2
    assert sm.complete("a", again["a"], lost(), 2.0, lost=True) is Outcome.DONE
    result = sm.result("a")
    assert result is not None and result.status is TaskStatus.FAILURE and not result.in_doubt


def test_a_loss_counts_against_the_retry_budget() -> None:
    sm = TaskStateManager([Task("a", noop, retry=Retry(attempts=2))])
    outcomes = []
    for step in range(3):
        tokens = start_all(sm, float(step))
        outcomes.append(sm.complete("a", tokens["a"], lost(), float(step), lost=True))
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DONE]


def test_a_lost_at_most_once_task_is_in_doubt_and_blocks_only_its_dependents() -> None:
    tasks = [
        Task("a", noop, at_most_once=True, retry=Retry(attempts=3, on=(ConnectionRefusedError,))),
        Task("b", noop, depends_on=["a"]),
        Task("x", noop),
    ]
    sm = TaskStateManager(tasks)
    tokens = start_all(sm)
    assert sm.complete("a", tokens["a"], lost(), 1.0, lost=True) is Outcome.DONE
    result = sm.result("a")
    assert result is not None and result.in_doubt and result.message.startswith("outcome unknown")
    assert sm.phase("b") is Phase.WAITING
    assert not sm.is_blocked(), "x is still running"
    sm.complete("x", tokens["x"], TaskResult.success(1), 1.0)
    assert sm.is_blocked() and not sm.is_finished()
    assert sm.take_ready(2.0, 10) == []
    assert sm.resolve("a", TaskResult.success({"charged": True}))
    assert not sm.is_blocked()
    batch = sm.take_ready(3.0, 10)
    assert [d.task.name for d in batch] == ["b"]
    assert batch[0].inputs == {"a": {"charged": True}}


def test_resolving_an_in_doubt_task_as_failure_skips_its_dependents() -> None:
    sm = TaskStateManager([Task("a", noop, at_most_once=True), Task("b", noop, depends_on=["a"])])
    tokens = start_all(sm)
    sm.complete("a", tokens["a"], lost(), 1.0, lost=True)
    sm.take_newly_done()
    sm.resolve("a", TaskResult.failure("it did not happen"))
    assert sm.is_finished()
    skipped = sm.result("b")
    assert skipped is not None and skipped.status is TaskStatus.SKIPPED
    assert [name for name, _ in sm.take_newly_done()] == ["a", "b"]


def test_an_in_doubt_result_survives_hydration_and_keeps_blocking() -> None:
    tasks = [Task("a", noop, at_most_once=True), Task("b", noop, depends_on=["a"])]
    in_doubt = TaskResult(TaskStatus.FAILURE, message="outcome unknown", in_doubt=True)
    sm = TaskStateManager(tasks)
    sm.hydrate({"a": in_doubt}, keep_all=True)
    assert sm.is_blocked() and sm.take_ready(0.0, 10) == []


def test_cancel_ends_a_blocked_run() -> None:
    sm = TaskStateManager([Task("a", noop, at_most_once=True), Task("b", noop, depends_on=["a"])])
    tokens = start_all(sm)
    sm.complete("a", tokens["a"], lost(), 1.0, lost=True)
    sm.cancel_all("run cancelled")
    assert sm.is_finished()
    b = sm.result("b")
    assert b is not None and b.status is TaskStatus.CANCELLED


def test_an_attempt_that_never_started_is_requeued_without_counting_a_failure() -> None:
    sm = TaskStateManager([Task("a", noop)])
    tokens = start_all(sm)
    assert sm.requeue("a", tokens["a"])
    assert not sm.requeue("a", tokens["a"]), "only the current attempt can be sent again"
    again = start_all(sm)
    assert sm.attempt("a") == 2
    # the budget is intact: a real failure now is final only because attempts=0
    assert sm.complete("a", again["a"], TaskResult.failure("boom"), 1.0) is Outcome.DONE


def test_adopting_an_attempt_found_in_flight_after_a_restart() -> None:
    sm = TaskStateManager([Task("a", noop), Task("b", noop, depends_on=["a"])])
    sm.adopt("a", 3, "3-abc", None)
    assert sm.phase("a") is Phase.RUNNING and sm.take_ready(0.0, 10) == []
    assert sm.complete("a", "3-other", TaskResult.success(1), 0.0) is Outcome.STALE
    assert sm.complete("a", "3-abc", TaskResult.success(1), 0.0) is Outcome.DONE
    assert [d.task.name for d in sm.take_ready(0.0, 10)] == ["b"]


def test_an_adopted_task_handed_back_runs_once_though_the_ready_queue_held_it() -> None:
    # adopt() leaves the task's old ready-queue entry behind (dropped when it comes
    # up): a hand-back queues it again, and it must still start exactly once.
    sm = TaskStateManager([Task("a", noop), Task("b", noop)])
    sm.adopt("a", 1, "1-x", None)
    assert sm.requeue("a", "1-x")
    started = [d.task.name for d in sm.take_ready(0.0, 10)]
    assert sorted(started) == ["a", "b"]
    assert sm.take_ready(0.0, 10) == [] and not sm.has_ready()


def test_adopting_half_of_a_large_run_starts_exactly_the_other_half() -> None:
    tasks = [Task(f"t{i}", noop) for i in range(20_000)]
    sm = TaskStateManager(tasks)
    for i in range(0, 20_000, 2):
        sm.adopt(f"t{i}", 1, f"1-{i}", None)
    started = sm.take_ready(0.0, 30_000)
    assert len(started) == 10_000 and all(int(d.task.name[1:]) % 2 == 1 for d in started)
