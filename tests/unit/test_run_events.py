"""The one coordinator loop: its hooks (stop, observe, cancel from the backend) and the events
the in-process runner emits, which the Redis mode must emit alike (tests/integration/test_run_events.py)."""

from __future__ import annotations

from rqdag import TaskRunnerBuilder, TaskStatus
from rqdag.coordinator.events import EventBus
from rqdag.shared.model.result import TaskResult
from tests.event_trace import RECOVERABLE_KINDS, Trace
from tests.integration.flows import recoverable
from tests.unit.test_executor import make, task

# ---- the in-process runner's events -------------------------------------------------------------


def test_the_in_process_runner_emits_every_event_kind_in_order_with_its_payload() -> None:
    trace = Trace()
    runner = trace.listen(TaskRunnerBuilder().with_run_id("events")).build()

    results = runner.execute(recoverable, concurrency=1)

    assert trace.kinds() == RECOVERABLE_KINDS
    assert {e.run_id for e in trace.events} == {"events"}
    by_kind = {(e.kind, e.task, e.attempt): e for e in trace.events}
    failed = by_kind[("task_end", "b", 1)].result
    assert failed is not None and failed.status is TaskStatus.FAILURE
    assert failed.message == "RuntimeError: not fixed yet"
    skipped = by_kind[("task_skipped", "c", 0)].result
    assert skipped is not None and skipped.message == "dependency 'b' failed"
    retried = by_kind[("task_retry", "d", 1)].result
    assert retried is not None and retried.message == "ConnectionError: first attempt fails"
    assert by_kind[("task_end", "d", 2)].result == results["d"]
    assert all(e.result is None for e in trace.events if e.kind in ("task_start", "workflow_start"))
    assert trace.events[-1].results == results


# ---- the loop's hooks -----------------------------------------------------------------------------


def test_loop_leaves_when_stop_says_so_and_announces_no_end() -> None:
    executor, state, dispatcher, recorder = make([task("a")])

    assert executor.loop(stop=lambda: True) is False

    assert [r.task.name for r in dispatcher.submitted] == ["a"]
    assert dispatcher.waits == [], "stop is asked before the loop waits"
    assert dispatcher.closed
    assert not state.is_finished()
    assert "workflow_end" not in recorder.kinds()


def test_loop_observes_each_unfinished_step_then_waits_with_the_in_flight_count() -> None:
    executor, _, dispatcher, recorder = make([task("a"), task("b"), task("c", "a")])
    seen: list[tuple[int, int]] = []

    def observe() -> None:
        seen.append((len(dispatcher.waits), len(dispatcher.in_flight)))
        if len(seen) == 2:
            dispatcher.finish("a")
            dispatcher.finish("b")
        elif len(seen) == 3:
            dispatcher.finish("c")

    assert executor.loop(observe=observe, stop=lambda: len(seen) > 5) is True

    assert seen == [(0, 2), (1, 2), (2, 1)], "once per unfinished step, before its wait"
    assert dispatcher.in_flight_hints == [2, 2, 1]
    assert "workflow_end" not in recorder.kinds(), "loop() leaves the end to end()"
    results = executor.end()
    assert recorder.events[-1].kind == "workflow_end"
    assert recorder.events[-1].results == results


def test_end_announces_the_results_it_is_given() -> None:
    executor, _, dispatcher, recorder = make([task("a")])
    executor.step(0.0)
    dispatcher.finish("a")
    executor.step(1.0)
    stored = {"a": TaskResult.success(data="from the store")}

    assert executor.end(stored) is stored
    assert recorder.events[-1].results == stored


def test_a_cancel_request_from_the_dispatcher_cancels_in_the_step_that_noted_it() -> None:
    executor, state, dispatcher, _ = make([task("a"), task("b", "a"), task("c")], concurrency=1)
    executor.step(0.0)
    dispatcher.finish("a")
    dispatcher.cancel_reason = "operator said stop"

    assert executor.step(1.0) is True

    assert [r.task.name for r in dispatcher.submitted] == ["a"], "nothing is sent once a cancel is noted"
    assert state.result("a").status is TaskStatus.SUCCESS  # type: ignore[union-attr]
    for name in ("b", "c"):
        assert state.result(name) == TaskResult.cancelled("cancelled before it started: operator said stop")


def test_the_executors_own_cancel_reason_comes_before_the_dispatchers() -> None:
    executor, state, dispatcher, _ = make([task("a")])
    executor.cancel("from the runner")
    dispatcher.cancel_reason = "from the backend"
    assert executor.step(0.0) is True
    assert state.result("a") == TaskResult.cancelled("cancelled before it started: from the runner")


def test_listens_says_whether_a_kind_has_a_listener() -> None:
    bus = EventBus()
    assert not bus.listens("workflow_end")
    bus.on("workflow_end", print)
    assert bus.listens("workflow_end") and not bus.listens("task_end")
