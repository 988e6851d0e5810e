"""WorkflowExecutor driven one ``step(now)`` at a time, with an in-memory dispatcher and a fake clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import pytest

from rqdag.coordinator.dispatch import Completion, CompletionKind, Dispatcher, DispatchRequest
from rqdag.coordinator.events import EventBus, RunEvent
from rqdag.coordinator.executor import MAX_IDLE_WAIT_S, WorkflowExecutor
from rqdag.coordinator.inprocess import InProcessDispatcher
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import RqdagError
from rqdag.shared.model.context import TaskContext
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Retry, Task
from rqdag.shared.model.vocabulary import TaskStatus


def noop(ctx: TaskContext) -> None:
    """Never called: the test dispatcher decides what each attempt returns."""


def task(name: str, *deps: str, **kwargs: object) -> Task:
    return Task(name, noop, depends_on=deps, **kwargs)  # type: ignore[arg-type]


class MemoryDispatcher:
    """A dispatcher that runs nothing: the test finishes attempts by hand."""

    def __init__(self) -> None:
        self.submitted: list[DispatchRequest] = []
        self.in_flight: dict[str, DispatchRequest] = {}
        self.pending: list[Completion] = []
        self.abandoned: list[tuple[str, str]] = []
        self.recorded: dict[str, TaskResult] = {}
        self.waits: list[float] = []
        self.wakes = 0
        self.closed = False
        self.max_in_flight = 0
        self.cancel_reason: str | None = None
        self.in_flight_hints: list[int] = []

    # the Dispatcher protocol

    def submit(self, requests: Sequence[DispatchRequest]) -> None:
        for request in requests:
            assert request.task.name not in self.in_flight, "dispatched twice"
            self.submitted.append(request)
            self.in_flight[request.task.name] = request
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight))

    def collect(self) -> list[Completion]:
        out, self.pending = self.pending, []
        return out

    def wait(self, timeout: float, *, in_flight: int = 0) -> None:
        self.waits.append(timeout)
        self.in_flight_hints.append(in_flight)

    def wake(self) -> None:
        self.wakes += 1

    def abandon(self, task: str, token: str) -> None:
        self.abandoned.append((task, token))
        if task in self.in_flight and self.in_flight[task].token == token:
            del self.in_flight[task]

    def unstarted(self, tasks: Sequence[str]) -> set[str]:
        return set()

    def record(self, results: Mapping[str, TaskResult]) -> None:
        for name, result in results.items():
            assert name not in self.recorded, f"{name} recorded twice"
            self.recorded[name] = result

    def close(self) -> None:
        self.closed = True

    # helpers for the tests

    def finish(self, name: str, result: TaskResult | None = None) -> DispatchRequest:
        request = self.in_flight.pop(name)
        outcome = result if result is not None else TaskResult.success(data=f"{name}-data")
        self.pending.append(Completion(name, request.token, outcome))
        return request

    def started(self) -> list[tuple[str, int]]:
        return [(r.task.name, r.attempt) for r in self.submitted]


def test_memory_dispatcher_satisfies_the_protocol() -> None:
    dispatcher: Dispatcher = MemoryDispatcher()
    assert dispatcher.collect() == []


class Recorder:
    """Collects every event of every kind."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[RunEvent] = []
        for kind in (
            "workflow_start",
            "workflow_end",
            "task_start",
            "task_end",
            "task_skipped",
            "task_retry",
        ):
            bus.on(kind, self.events.append)

    def kinds(self, task: str | None = None) -> list[str]:
        return [e.kind for e in self.events if task is None or e.task == task]


def make(
    tasks: list[Task], **kwargs: object
) -> tuple[WorkflowExecutor, TaskStateManager, MemoryDispatcher, Recorder]:
    state = TaskStateManager(tasks)
    dispatcher = MemoryDispatcher()
    bus = EventBus()
    recorder = Recorder(bus)
    executor = WorkflowExecutor(state, dispatcher, run_id="run-1", events=bus, **kwargs)  # type: ignore[arg-type]
    return executor, state, dispatcher, recorder


# ---- dispatching -------------------------------------------------------------------------


def test_step_dispatches_ready_tasks_with_run_params_and_inputs() -> None:
    executor, state, dispatcher, recorder = make([task("a"), task("b", "a")], params={"day": "2026-11-28"})
    assert executor.step(0.0) is False
    (a,) = dispatcher.submitted
    assert (a.run_id, a.task.name, a.attempt, dict(a.params), dict(a.inputs)) == (
        "run-1",
        "a",
        1,
        {"day": "2026-11-28"},
        {},
    )
    dispatcher.finish("a", TaskResult.success(data={"n": 1}))
    assert executor.step(1.0) is False
    b = dispatcher.submitted[1]
    assert b.task.name == "b"
    assert dict(b.inputs) == {"a": {"n": 1}}
    dispatcher.finish("b")
    assert executor.step(2.0) is True
    assert state.snapshot()["a"].data == {"n": 1}
    assert recorder.kinds()[0] == "workflow_start"
    assert recorder.kinds("a") == ["task_start", "task_end"]
    assert recorder.kinds("b") == ["task_start", "task_end"]


def test_a_dependencys_task_end_comes_before_its_dependents_task_start() -> None:
    executor, _, dispatcher, recorder = make([task("a"), task("b", "a")])
    executor.step(0.0)
    dispatcher.finish("a")
    executor.step(1.0)
    order = [(e.kind, e.task) for e in recorder.events if e.task is not None]
    assert order.index(("task_end", "a")) < order.index(("task_start", "b"))


def test_concurrency_limit_is_never_exceeded_and_always_used() -> None:
    executor, _, dispatcher, _ = make([task(f"t{i}") for i in range(5)], concurrency=2)
    executor.step(0.0)
    assert [n for n, _ in dispatcher.started()] == ["t0", "t1"]
    executor.step(0.5)
    assert len(dispatcher.submitted) == 2, "no slot is free: nothing more starts"
    now = 1.0
    while dispatcher.in_flight:
        dispatcher.finish(next(iter(dispatcher.in_flight)))
        executor.step(now)
        assert len(dispatcher.in_flight) == min(2, 5 - len(dispatcher.recorded))
        now += 1.0
    assert dispatcher.max_in_flight == 2
    assert len(dispatcher.recorded) == 5


def test_higher_priority_is_dispatched_first_when_slots_are_scarce() -> None:
    tasks = [task("low"), task("top", priority=9), task("mid", priority=4), task("also_low")]
    executor, _, dispatcher, _ = make(tasks, concurrency=1)
    now = 0.0
    while not executor.step(now):
        dispatcher.finish(dispatcher.submitted[-1].task.name)
        now += 1.0
    assert [n for n, _ in dispatcher.started()] == ["top", "mid", "low", "also_low"]


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        WorkflowExecutor(TaskStateManager([task("a")]), MemoryDispatcher(), run_id="r", concurrency=0)


# ---- skips and events ------------------------------------------------------------------


def test_failure_skips_dependents_and_every_result_is_recorded_once() -> None:
    executor, state, dispatcher, recorder = make([task("a"), task("b", "a"), task("c", "b"), task("d")])
    executor.step(0.0)
    dispatcher.finish("a", TaskResult.failure("broken"))
    dispatcher.finish("d")
    assert executor.step(1.0) is True
    assert dispatcher.recorded == state.snapshot()
    assert dispatcher.recorded["b"] == TaskResult.skipped("dependency 'a' failed")
    assert dispatcher.recorded["c"] == TaskResult.skipped("dependency 'b' was skipped")
    skipped = [e for e in recorder.events if e.kind == "task_skipped"]
    assert [(e.task, e.result) for e in skipped] == [("b", state.result("b")), ("c", state.result("c"))]
    ends = {e.task: e for e in recorder.events if e.kind == "task_end"}
    assert set(ends) == {"a", "d"}
    assert ends["a"].result is not None and ends["a"].result.status is TaskStatus.FAILURE
    assert ends["a"].attempt == 1
    assert all(e.run_id == "run-1" for e in recorder.events)


def test_retry_waits_for_its_delay_and_emits_task_retry() -> None:
    retry = Retry(attempts=2, delay_s=1.0, backoff="exponential")
    executor, state, dispatcher, recorder = make([task("a", retry=retry)])
    executor.step(0.0)
    dispatcher.finish("a", TaskResult.failure("first"))
    executor.step(10.0)
    assert dispatcher.started() == [("a", 1)]
    (retry_event,) = [e for e in recorder.events if e.kind == "task_retry"]
    assert retry_event.task == "a"
    assert retry_event.result is not None and retry_event.result.message == "first"
    assert state.next_wakeup() == 11.0
    executor.step(10.9)
    assert dispatcher.started() == [("a", 1)]
    executor.step(11.0)
    assert dispatcher.started() == [("a", 1), ("a", 2)]
    dispatcher.finish("a", TaskResult.failure("second"))
    executor.step(11.5)
    assert state.next_wakeup() == 13.5, "exponential: the second retry waits twice as long"
    executor.step(13.5)
    dispatcher.finish("a", TaskResult.failure("third"))
    assert executor.step(14.0) is True
    result = state.result("a")
    assert result is not None
    assert (result.status, result.message, result.metrics.attempt) == (TaskStatus.FAILURE, "third", 3)
    assert recorder.kinds("a") == [
        "task_start",
        "task_retry",
        "task_start",
        "task_retry",
        "task_start",
        "task_end",
    ]


# ---- per-task timeouts -------------------------------------------------------------------


def test_task_timeout_fails_the_task_abandons_the_attempt_and_ignores_its_late_answer() -> None:
    executor, state, dispatcher, _ = make([task("a", timeout_s=5.0), task("b", "a")])
    executor.step(100.0)
    request = dispatcher.submitted[0]
    executor.step(104.9)
    assert dispatcher.abandoned == []
    assert executor.step(105.0) is True
    assert dispatcher.abandoned == [("a", request.token)]
    result = state.result("a")
    assert result is not None
    assert result.status is TaskStatus.FAILURE
    assert result.message == "timed out after 5s"
    assert result.metrics.attempt == 1
    assert state.result("b") == TaskResult.skipped("dependency 'a' failed")
    dispatcher.pending.append(Completion("a", request.token, TaskResult.success(data="too late")))
    executor.step(106.0)
    assert state.result("a") == result


def test_timed_out_task_is_retried_when_it_has_retries() -> None:
    executor, state, dispatcher, _ = make([task("a", timeout_s=1.0, retry=Retry(attempts=1))])
    executor.step(0.0)
    executor.step(1.0)
    assert dispatcher.started() == [("a", 1), ("a", 2)]
    assert dispatcher.abandoned == [("a", dispatcher.submitted[0].token)]
    dispatcher.finish("a", TaskResult.success(data="second time"))
    assert executor.step(1.5) is True
    assert state.result("a").data == "second time"  # type: ignore[union-attr]
    assert state.result("a").metrics.attempt == 2  # type: ignore[union-attr]


def test_timed_out_task_that_is_retried_emits_task_retry() -> None:
    executor, _, dispatcher, recorder = make([task("a", timeout_s=1.0, retry=Retry(attempts=1))])
    executor.step(0.0)
    executor.step(1.0)
    assert dispatcher.started() == [("a", 1), ("a", 2)]
    retries = [e for e in recorder.events if e.kind == "task_retry"]
    assert [(e.task, e.attempt) for e in retries] == [("a", 1)]


# ---- run deadline and cancellation --------------------------------------------------------


def test_run_deadline_cancels_running_and_pending_tasks() -> None:
    executor, state, dispatcher, recorder = make([task("a"), task("b", "a"), task("c")], timeout=10.0)
    executor.step(50.0)
    dispatcher.finish("c")
    assert executor.step(59.99) is False
    assert dispatcher.abandoned == []
    assert executor.step(60.0) is True
    assert dispatcher.abandoned == [("a", dispatcher.submitted[0].token)]
    results = state.snapshot()
    assert results["a"].status is TaskStatus.CANCELLED
    assert results["a"].message == "run timed out after 10s while running"
    assert results["b"] == TaskResult.cancelled("cancelled before it started: run timed out after 10s")
    assert results["c"].status is TaskStatus.SUCCESS
    assert {e.task for e in recorder.events if e.kind == "task_end"} == {"a", "b", "c"}
    assert dispatcher.recorded == results


def test_cancel_stops_the_run_at_the_next_step_and_the_first_reason_wins() -> None:
    executor, state, dispatcher, _ = make([task("a"), task("b", "a")])
    executor.step(0.0)
    executor.cancel("operator said stop")
    executor.cancel("second reason")
    assert dispatcher.wakes == 2
    assert executor.step(1.0) is True
    assert dispatcher.abandoned == [("a", dispatcher.submitted[0].token)]
    a = state.result("a")
    assert a is not None
    assert (a.status, a.message, a.metrics.attempt) == (
        TaskStatus.CANCELLED,
        "operator said stop while running",
        1,
    )
    assert state.result("b") == TaskResult.cancelled("cancelled before it started: operator said stop")


def test_cancel_before_the_first_step_runs_nothing() -> None:
    executor, state, dispatcher, recorder = make([task("a"), task("b")])
    executor.cancel()
    assert executor.step(0.0) is True
    assert dispatcher.submitted == []
    never_started = "cancelled before it started: run cancelled"
    assert {n: r.message for n, r in state.snapshot().items()} == {"a": never_started, "b": never_started}
    assert recorder.kinds()[0] == "workflow_start"


def test_a_completion_arriving_with_the_cancel_is_kept() -> None:
    executor, state, dispatcher, _ = make([task("a"), task("b")])
    executor.step(0.0)
    dispatcher.finish("a")
    executor.cancel()
    executor.step(1.0)
    assert state.result("a").status is TaskStatus.SUCCESS  # type: ignore[union-attr]
    assert state.result("b").status is TaskStatus.CANCELLED  # type: ignore[union-attr]


# ---- how an attempt ended -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "at_most_once", "sent_again", "status"),
    [
        (CompletionKind.FINISHED, False, False, TaskStatus.FAILURE),  # no retries left: final
        (CompletionKind.LOST, False, True, None),  # a loss sends an at-least-once task again
        (CompletionKind.LOST, True, False, TaskStatus.FAILURE),  # ... and fails an at-most-once one
        (CompletionKind.HANDED_BACK, False, True, None),
        (CompletionKind.HANDED_BACK, True, False, TaskStatus.FAILURE),
        (CompletionKind.UNSTARTED, True, True, None),  # never started: sent again, even at most once
    ],
)
def test_step_applies_each_completion_kind(
    kind: CompletionKind, at_most_once: bool, sent_again: bool, status: TaskStatus | None
) -> None:
    executor, state, dispatcher, _ = make([task("a", at_most_once=at_most_once)])
    executor.step(0.0)
    request = dispatcher.in_flight.pop("a")
    dispatcher.pending.append(Completion("a", request.token, TaskResult.failure("it ended"), kind))
    executor.step(1.0)
    assert ("a" in dispatcher.in_flight) is sent_again
    result = state.result("a")
    assert (None if result is None else result.status) is status
    assert (result is not None and result.in_doubt) is (at_most_once and status is not None)


def test_step_applies_a_resolution_in_place_of_the_result() -> None:
    executor, state, dispatcher, _ = make([task("a")])
    executor.step(0.0)
    dispatcher.finish("a", TaskResult.failure("broke"))
    executor.step(1.0)
    dispatcher.recorded.clear()  # the resolution is published again: listeners and record() see it
    dispatcher.pending.append(Completion("a", "", TaskResult.success(data=1), CompletionKind.RESOLVED))
    executor.step(2.0)
    assert state.result("a") == dispatcher.recorded["a"] == TaskResult.success(data=1)


# ---- the outer loop with a fake clock -----------------------------------------------------


class ClockedDispatcher(MemoryDispatcher):
    """wait() finishes whatever is in flight by ``plan``, or lets the fake time pass."""

    def __init__(self, plan: dict[tuple[str, int], TaskResult | None]) -> None:
        super().__init__()
        self.now = 0.0
        self.plan = plan

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float, *, in_flight: int = 0) -> None:
        super().wait(timeout, in_flight=in_flight)
        answered = False
        for name, request in list(self.in_flight.items()):
            result = self.plan.get((name, request.attempt))
            if result is not None:
                self.finish(name, result)
                answered = True
        if not answered:
            self.now += timeout


def test_run_sleeps_until_the_next_retry_and_reports_the_results() -> None:
    dispatcher = ClockedDispatcher(
        {("a", 1): TaskResult.failure("flaky"), ("a", 2): TaskResult.success(data=7)}
    )
    state = TaskStateManager([task("a", retry=Retry(attempts=1, delay_s=0.3))])
    bus = EventBus()
    recorder = Recorder(bus)
    executor = WorkflowExecutor(state, dispatcher, run_id="r", events=bus, clock=dispatcher.clock)

    results = executor.run()

    assert dispatcher.waits == [MAX_IDLE_WAIT_S, 0.3, MAX_IDLE_WAIT_S]
    assert results["a"].data == 7
    assert results["a"].metrics.attempt == 2
    assert dispatcher.closed
    assert recorder.events[-1].kind == "workflow_end"
    assert recorder.events[-1].results == results


def test_run_wakes_up_for_the_run_deadline() -> None:
    dispatcher = ClockedDispatcher({})  # the task never answers
    state = TaskStateManager([task("hang"), task("after", "hang")])
    executor = WorkflowExecutor(state, dispatcher, run_id="r", timeout=2.5, clock=dispatcher.clock)

    results = executor.run()

    assert dispatcher.waits == [1.0, 1.0, 0.5]
    assert dispatcher.now == 2.5
    assert results["hang"].message == "run timed out after 2.5s while running"
    assert results["after"].message == "cancelled before it started: run timed out after 2.5s"
    assert dispatcher.abandoned == [("hang", dispatcher.submitted[0].token)]


def test_run_wakes_up_for_a_task_timeout() -> None:
    dispatcher = ClockedDispatcher({})
    state = TaskStateManager([task("hang", timeout_s=0.25)])
    executor = WorkflowExecutor(state, dispatcher, run_id="r", clock=dispatcher.clock)
    results = executor.run()
    assert dispatcher.waits == [0.25]
    assert results["hang"].message == "timed out after 0.25s"


def test_run_closes_the_dispatcher_when_a_step_raises() -> None:
    class Broken(MemoryDispatcher):
        def submit(self, requests: Sequence[DispatchRequest]) -> None:
            raise ConnectionError("backend down")

    dispatcher = Broken()
    executor = WorkflowExecutor(TaskStateManager([task("a")]), dispatcher, run_id="r")
    with pytest.raises(ConnectionError):
        executor.run()
    assert dispatcher.closed


# ---- the event bus ------------------------------------------------------------------------


def test_a_raising_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: RunEvent) -> None:
        raise ValueError("listener bug")

    bus.on("task_end", broken)
    bus.on("task_end", lambda e: seen.append(e.task or ""))
    bus.emit(RunEvent("task_end", "r", "a"))
    assert seen == ["a"]
    assert "listener bug" in caplog.text


def test_unknown_event_kinds_and_non_callables_are_refused() -> None:
    bus = EventBus()
    with pytest.raises(RqdagError, match="task_finished"):
        bus.on("task_finished", print)
    with pytest.raises(RqdagError, match="callable"):
        bus.on("task_end", "not callable")  # type: ignore[arg-type]


# ---- the in-process dispatcher on its own ----------------------------------------------------


def request(name: str, token: str = "tok") -> DispatchRequest:
    return DispatchRequest("run-9", task(name), 1, token, {"dep": 1}, {"p": 2})


def test_inprocess_dispatcher_runs_an_attempt_and_reports_it_with_its_token() -> None:
    seen: list[TaskContext] = []

    def func(ctx: TaskContext) -> int:
        seen.append(ctx)
        return 5

    marker = object()
    dispatcher = InProcessDispatcher({"a": (func, None)}, marker)
    dispatcher.submit([request("a", "tok-1")])
    dispatcher.wait(2.0)
    (completion,) = dispatcher.collect()
    assert (completion.task, completion.token, completion.result.data) == ("a", "tok-1", 5)
    assert completion.result.metrics.attempt == 1
    assert completion.result.metrics.worker is not None
    (ctx,) = seen
    assert (ctx.run_id, ctx.task, ctx.attempt, dict(ctx.inputs), dict(ctx.params)) == (
        "run-9",
        "a",
        1,
        {"dep": 1},
        {"p": 2},
    )
    assert ctx.context is marker
    assert ctx.idempotency_key == "rqdag:run-9:a"
    dispatcher.close()


def _running_until_cancelled(*token: str) -> tuple[InProcessDispatcher, threading.Event]:
    """An in-process dispatcher whose attempt of ``a`` has started and runs until it is cancelled;
    the event is set when the attempt saw its cancel."""
    started = threading.Event()
    saw_cancel = threading.Event()

    def func(ctx: TaskContext) -> None:
        started.set()
        if ctx.cancelled.wait(2.0):
            saw_cancel.set()

    dispatcher = InProcessDispatcher({"a": (func, None)}, None)
    dispatcher.submit([request("a", *token)])
    assert started.wait(2.0)
    return dispatcher, saw_cancel


def test_inprocess_dispatcher_abandon_sets_the_attempts_cancelled_event() -> None:
    dispatcher, saw_cancel = _running_until_cancelled("tok-1")
    dispatcher.abandon("a", "other-token")
    assert not saw_cancel.is_set()
    dispatcher.abandon("a", "tok-1")
    assert saw_cancel.wait(2.0)
    dispatcher.close()


def test_inprocess_dispatcher_close_signals_running_attempts() -> None:
    dispatcher, saw_cancel = _running_until_cancelled()
    dispatcher.close()
    assert saw_cancel.wait(2.0)


def test_inprocess_dispatcher_wake_ends_a_wait_without_a_completion() -> None:
    dispatcher = InProcessDispatcher({}, None)
    timer = threading.Timer(0.05, dispatcher.wake)
    started = time.monotonic()
    timer.start()
    dispatcher.wait(30.0)
    assert time.monotonic() - started < 5.0
    assert dispatcher.collect() == []
    timer.join()
