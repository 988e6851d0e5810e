"""TaskRunnerBuilder / TaskRunner end to end, in-process: real threads, no Redis.

Overlap and ordering are proven with barriers and events, never with timing guesses.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from rqdag import (
    Retry,
    Task,
    TaskContext,
    TaskResult,
    TaskRunner,
    TaskRunnerBuilder,
    TaskStatus,
    Workflow,
    to_mermaid,
)
from rqdag.coordinator.events import RunEvent
from rqdag.errors import RqdagError

from . import tasks_for_tests

WAIT = 3.0  # upper bound for any wait on an event: a hung test fails instead of blocking


def run(
    tasks: Workflow | list[Task], builder: TaskRunnerBuilder | None = None, **kwargs: Any
) -> dict[str, TaskResult]:
    return (builder or TaskRunnerBuilder()).build().execute(tasks, **kwargs)


def const(value: Any) -> Callable[[TaskContext], Any]:
    def func(ctx: TaskContext) -> Any:
        return value

    return func


class Calls:
    """Thread-safe record of which task ran, with which attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[str, int]] = []

    def __call__(self, ctx: TaskContext) -> str:
        with self._lock:
            self.seen.append((ctx.task, ctx.attempt))
        return ctx.task

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]


class Payments:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def charge(self, orders: list[dict[str, int]], idempotency_key: str) -> dict[str, int]:
        self.keys.append(idempotency_key)
        return {"charged": sum(o["amount"] for o in orders)}


class AppContext:
    def __init__(self) -> None:
        self.payment_gateway = Payments()
        self.lock = threading.Lock()


# ---- the API as users write it ----------------------------------------------------------------


def test_workflow_runs_with_inputs_context_and_idempotency_key() -> None:
    wf = Workflow("billing")

    @wf.task()
    def load_orders(ctx: TaskContext) -> list[dict[str, int]]:
        return [{"amount": 3}, {"amount": 4}]

    @wf.task(
        depends_on=["load_orders"],
        retry=Retry(attempts=3, delay_s=0.01, on=(ConnectionRefusedError,)),
        timeout_s=30,
        at_most_once=True,
    )
    def charge_cards(ctx: TaskContext) -> dict[str, int]:
        gateway: Payments = ctx.context.payment_gateway
        return gateway.charge(ctx.inputs["load_orders"], idempotency_key=ctx.idempotency_key)

    app = AppContext()
    runner = TaskRunnerBuilder(context=app).with_run_id("run-42").build()
    results = runner.execute(wf, concurrency=4, timeout=30)

    assert set(results) == {"load_orders", "charge_cards"}
    assert results["charge_cards"].status is TaskStatus.SUCCESS
    assert results["charge_cards"].data == {"charged": 7}
    assert app.payment_gateway.keys == ["rqdag:run-42:charge_cards"]
    assert runner.run_id == "run-42"
    assert runner.snapshot() == results


def test_params_reach_every_task() -> None:
    results = run([Task("d", tasks_for_tests.describe)], params={"date": "2026-11-28"})
    assert results["d"].data["params"] == {"date": "2026-11-28"}
    assert results["d"].data["task"] == "d"
    assert results["d"].data["attempt"] == 1


def test_tasks_as_a_list_with_callables_closures_lambdas_and_import_paths() -> None:
    offset = 100

    def closure(ctx: TaskContext) -> int:
        return offset + int(ctx.inputs["by_path"])

    tasks = [
        Task("by_path", tasks_for_tests.path_of("answer")),
        Task("by_callable", tasks_for_tests.add_inputs, depends_on=["by_path"]),
        Task("by_closure", closure, depends_on=["by_path"]),
        Task("by_lambda", lambda ctx: ctx.inputs["by_closure"] * 2, depends_on=["by_closure"]),
        Task("sum", tasks_for_tests.path_of("add_inputs"), depends_on=["by_callable", "by_lambda"]),
    ]
    results = run(tasks)
    assert {n: r.data for n, r in results.items()} == {
        "by_path": 42,
        "by_callable": 42,
        "by_closure": 142,
        "by_lambda": 284,
        "sum": 326,
    }


def test_a_task_returning_a_task_result_sets_its_status() -> None:
    tasks = [
        Task("explicit_skip", const(TaskResult.skipped("nothing to do today"))),
        Task("explicit_fail", const(TaskResult.failure("bad data"))),
        Task("explicit_ok", const(TaskResult.success(data=[1], message="fine"))),
        Task("after_skip", const(1), depends_on=["explicit_skip"]),
    ]
    results = run(tasks)
    assert (results["explicit_skip"].status, results["explicit_skip"].message) == (
        TaskStatus.SKIPPED,
        "nothing to do today",
    )
    assert (results["explicit_fail"].status, results["explicit_fail"].message) == (
        TaskStatus.FAILURE,
        "bad data",
    )
    assert (results["explicit_ok"].data, results["explicit_ok"].message) == ([1], "fine")
    assert results["after_skip"] == TaskResult.skipped("dependency 'explicit_skip' was skipped")


# ---- parallelism, concurrency, priority ------------------------------------------------------------


def test_independent_tasks_run_in_parallel() -> None:
    barrier = threading.Barrier(3, timeout=WAIT)

    def meet(ctx: TaskContext) -> str:
        barrier.wait()  # breaks (and the task fails) unless all three run at the same time
        return ctx.task

    tasks = [
        Task("x", meet),
        Task("y", meet),
        Task("z", meet),
        Task("join", tasks_for_tests.describe, ["x", "y", "z"]),
    ]
    results = run(tasks)
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(
        ["x", "y", "z", "join"], TaskStatus.SUCCESS
    )
    assert results["join"].data["inputs"] == {"x": "x", "y": "y", "z": "z"}


class Gauge:
    """Counts tasks running at once; pairs of tasks must meet at a barrier."""

    def __init__(self, meet: int) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.barrier = threading.Barrier(meet, timeout=WAIT) if meet > 1 else None

    def __call__(self, ctx: TaskContext) -> None:
        with self._lock:
            self.now += 1
            self.max = max(self.max, self.now)
        try:
            if self.barrier is not None:
                self.barrier.wait()
        finally:
            with self._lock:
                self.now -= 1


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_concurrency_limit_is_reached_and_never_exceeded(limit: int) -> None:
    gauge = Gauge(meet=limit)
    results = run([Task(f"t{i}", gauge) for i in range(limit * 3)], concurrency=limit)
    assert all(r.status is TaskStatus.SUCCESS for r in results.values()), results
    assert gauge.max == limit


def test_higher_priority_runs_first_when_slots_are_scarce() -> None:
    calls = Calls()
    tasks = [
        Task("low", calls),
        Task("high", calls, priority=10),
        Task("mid", calls, priority=5),
        Task("low_too", calls),
        Task("urgent_child", calls, depends_on=["high"], priority=100),
    ]
    run(tasks, concurrency=1)
    assert calls.names() == ["high", "urgent_child", "mid", "low", "low_too"]


# ---- failures, skips, continue_on_error ----------------------------------------------------------


def test_a_failure_skips_its_dependents_naming_the_dependency() -> None:
    calls = Calls()
    tasks = [
        Task("extract", tasks_for_tests.explode),
        Task("transform", calls, depends_on=["extract"]),
        Task("load", calls, depends_on=["transform"]),
        Task("audit", calls),
    ]
    results = run(tasks)
    assert calls.names() == ["audit"]
    failure = results["extract"]
    assert failure.status is TaskStatus.FAILURE
    assert failure.message == "RuntimeError: boom in extract"
    assert failure.error is not None and "Traceback" in failure.error and "boom in extract" in failure.error
    assert results["transform"] == TaskResult.skipped("dependency 'extract' failed")
    assert results["load"] == TaskResult.skipped("dependency 'transform' was skipped")
    assert results["audit"].status is TaskStatus.SUCCESS


def test_continue_on_error_lets_dependents_run_after_a_failure() -> None:
    tasks = [
        Task("optional", tasks_for_tests.explode, continue_on_error=True),
        Task("required", const("r")),
        Task("report", tasks_for_tests.describe, depends_on=["optional", "required"]),
    ]
    results = run(tasks)
    assert results["optional"].status is TaskStatus.FAILURE
    assert results["report"].status is TaskStatus.SUCCESS
    assert results["report"].data["inputs"] == {"required": "r"}


# ---- conditions ---------------------------------------------------------------------------------


def test_false_condition_skips_the_task_and_its_dependents() -> None:
    calls = Calls()
    seen: list[TaskContext] = []

    def only_on_mondays(ctx: TaskContext) -> bool:
        seen.append(ctx)
        return False

    tasks = [
        Task("up", const(5)),
        Task("weekly", calls, depends_on=["up"], condition=only_on_mondays),
        Task("after", calls, depends_on=["weekly"]),
    ]
    results = run(tasks)
    assert calls.names() == []
    assert results["weekly"].status is TaskStatus.SKIPPED
    assert results["weekly"].message == "condition is false"
    assert results["after"] == TaskResult.skipped("dependency 'weekly' was skipped")
    assert dict(seen[0].inputs) == {"up": 5}, "the condition gets the TaskContext"


def test_condition_as_an_import_path() -> None:
    calls = Calls()
    tasks = [
        Task("never", calls, condition=tasks_for_tests.path_of("always_false")),
        Task("always", calls, condition=tasks_for_tests.path_of("always_true")),
        Task("by_param", calls, condition=tasks_for_tests.path_of("param_enabled")),
    ]
    results = run(tasks, params={"enabled": True})
    assert sorted(calls.names()) == ["always", "by_param"]
    assert results["never"].status is TaskStatus.SKIPPED
    assert results["never"].message == "condition is false"
    results = run(tasks, params={"enabled": False})
    assert results["by_param"].status is TaskStatus.SKIPPED


def test_a_raising_condition_fails_the_task() -> None:
    def broken(ctx: TaskContext) -> bool:
        raise KeyError("flag")

    results = run([Task("a", const(1), condition=broken)])
    assert results["a"].status is TaskStatus.FAILURE
    assert "KeyError" in (results["a"].message or "")


# ---- retries -------------------------------------------------------------------------------------


def test_retry_until_success_with_the_attempt_in_ctx_and_metrics() -> None:
    attempts: list[int] = []
    keys: set[str] = set()

    def flaky(ctx: TaskContext) -> str:
        attempts.append(ctx.attempt)
        keys.add(ctx.idempotency_key)
        if ctx.attempt < 3:
            raise ConnectionError(f"try {ctx.attempt}")
        return "ok"

    retries: list[RunEvent] = []
    builder = TaskRunnerBuilder().on("task_retry", retries.append)
    results = run([Task("flaky", flaky, retry=Retry(attempts=2, delay_s=0.01))], builder=builder)
    assert attempts == [1, 2, 3]
    assert len(keys) == 1, "the idempotency key is the same on every attempt"
    assert results["flaky"].status is TaskStatus.SUCCESS
    assert results["flaky"].metrics.attempt == 3
    assert [(e.task, e.attempt) for e in retries] == [("flaky", 1), ("flaky", 2)]
    assert retries[0].result is not None and retries[0].result.message == "ConnectionError: try 1"


def test_attempts_two_means_at_most_three_runs() -> None:
    calls = Calls()

    def always_fails(ctx: TaskContext) -> None:
        calls(ctx)
        raise ValueError(f"attempt {ctx.attempt}")

    results = run([Task("bad", always_fails, retry=Retry(attempts=2))])
    assert calls.seen == [("bad", 1), ("bad", 2), ("bad", 3)]
    assert results["bad"].status is TaskStatus.FAILURE
    assert results["bad"].message == "ValueError: attempt 3"
    assert results["bad"].metrics.attempt == 3


def test_retry_waits_at_least_its_delay() -> None:
    starts: list[float] = []

    def flaky(ctx: TaskContext) -> None:
        starts.append(time.monotonic())
        if ctx.attempt < 3:
            raise ValueError("again")

    retry = Retry(attempts=2, delay_s=0.05, backoff="exponential")
    results = run([Task("a", flaky, retry=retry)])
    assert results["a"].status is TaskStatus.SUCCESS
    assert starts[1] - starts[0] >= 0.05
    assert starts[2] - starts[1] >= 0.1


# ---- timeouts and cancellation -------------------------------------------------------------------


class Blocker:
    """A task that waits for ``ctx.cancelled`` and reports that it saw it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.saw_cancel = threading.Event()

    def __call__(self, ctx: TaskContext) -> None:
        self.started.set()
        if ctx.cancelled.wait(WAIT):
            self.saw_cancel.set()


def test_task_timeout_fails_the_task_and_sets_ctx_cancelled() -> None:
    blocker = Blocker()
    tasks = [Task("slow", blocker, timeout_s=0.2), Task("after", const(1), depends_on=["slow"])]
    results = run(tasks)
    slow = results["slow"]
    assert slow.status is TaskStatus.FAILURE
    assert slow.message == "timed out after 0.2s"
    assert slow.metrics.attempt == 1
    assert results["after"] == TaskResult.skipped("dependency 'slow' failed")
    assert blocker.saw_cancel.wait(WAIT)


def test_a_timed_out_result_has_start_end_and_duration() -> None:
    blocker = Blocker()
    results = run([Task("slow", blocker, timeout_s=0.2)])
    metrics = results["slow"].metrics
    assert metrics.started_at is not None
    assert metrics.finished_at is not None
    assert metrics.duration_s is not None and metrics.duration_s >= 0.2
    assert blocker.saw_cancel.wait(WAIT)


def test_global_timeout_cancels_running_and_pending_tasks() -> None:
    blocker = Blocker()
    tasks = [
        Task("quick", const("q")),
        Task("slow", blocker),
        Task("after_slow", const(1), depends_on=["slow"]),
    ]
    results = run(tasks, timeout=0.2)
    assert results["quick"].status is TaskStatus.SUCCESS
    assert results["slow"].status is TaskStatus.CANCELLED
    assert results["slow"].message == "run timed out after 0.2s while running"
    never_started = TaskResult.cancelled("cancelled before it started: run timed out after 0.2s")
    assert results["after_slow"] == never_started
    assert blocker.saw_cancel.wait(WAIT)


def execute_in_thread(
    runner: TaskRunner, tasks: list[Task], **kwargs: Any
) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def target() -> None:
        out.append(runner.execute(tasks, **kwargs))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_cancel_from_another_thread() -> None:
    blocker = Blocker()
    calls = Calls()
    runner = TaskRunnerBuilder().build()
    tasks = [Task("slow", blocker), Task("after", calls, depends_on=["slow"])]
    thread, out = execute_in_thread(runner, tasks)
    assert blocker.started.wait(WAIT)
    runner.cancel()
    thread.join(WAIT)
    assert not thread.is_alive()
    (results,) = out
    assert results["slow"].status is TaskStatus.CANCELLED
    assert results["slow"].message == "run cancelled while running"
    assert results["after"] == TaskResult.cancelled("cancelled before it started: run cancelled")
    assert calls.seen == []
    assert blocker.saw_cancel.wait(WAIT)


def test_cancel_from_a_signal_handler() -> None:
    runner = TaskRunnerBuilder().build()
    blocker = Blocker()

    def send_signal(ctx: TaskContext) -> None:
        assert blocker.started.wait(WAIT)
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: runner.cancel("signal received"))
    try:
        results = runner.execute([Task("slow", blocker), Task("trigger", send_signal)])
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert results["slow"].message == "signal received while running"
    assert results["slow"].status is TaskStatus.CANCELLED
    assert blocker.saw_cancel.wait(WAIT)


def test_cancel_when_nothing_runs_is_harmless() -> None:
    runner = TaskRunnerBuilder().build()
    runner.cancel()
    assert runner.execute([Task("a", const(1))])["a"].status is TaskStatus.SUCCESS
    runner.cancel()
    assert runner.snapshot()["a"].status is TaskStatus.SUCCESS


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_task_raising_system_exit_fails_instead_of_hanging_the_run() -> None:
    def quits(ctx: TaskContext) -> None:
        raise SystemExit(3)

    runner = TaskRunnerBuilder().build()
    thread, out = execute_in_thread(runner, [Task("quits", quits)])
    thread.join(1.0)
    finished = not thread.is_alive()
    if not finished:
        runner.cancel()
        thread.join(WAIT)
    assert finished, "the run never ended: the attempt's thread died without a result"
    assert out[0]["quits"].status is TaskStatus.FAILURE


# ---- events ---------------------------------------------------------------------------------------


KINDS = ("workflow_start", "workflow_end", "task_start", "task_end", "task_skipped", "task_retry")


def test_events_are_emitted_and_a_raising_listener_breaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    events: list[RunEvent] = []
    lock = threading.Lock()

    def record(event: RunEvent) -> None:
        with lock:
            events.append(event)

    def broken(event: RunEvent) -> None:
        raise RuntimeError("listener bug")

    builder = TaskRunnerBuilder()
    for kind in KINDS:
        builder.on(kind, broken)
        builder.on(kind, record)

    def flaky(ctx: TaskContext) -> int:
        if ctx.attempt == 1:
            raise ValueError("once")
        return 1

    tasks = [
        Task("ok", const(1)),
        Task("flaky", flaky, retry=Retry(attempts=1)),
        Task("bad", tasks_for_tests.explode),
        Task("off", const(1), condition=tasks_for_tests.always_false),
        Task("child", const(1), depends_on=["bad"]),
    ]
    runner = builder.with_run_id("ev").build()
    results = runner.execute(tasks)

    assert {n: r.status for n, r in results.items()} == {
        "ok": TaskStatus.SUCCESS,
        "flaky": TaskStatus.SUCCESS,
        "bad": TaskStatus.FAILURE,
        "off": TaskStatus.SKIPPED,
        "child": TaskStatus.SKIPPED,
    }
    assert [e.kind for e in events].count("workflow_start") == 1
    assert events[0].kind == "workflow_start"
    assert events[-1].kind == "workflow_end"
    assert events[-1].results == results
    assert all(e.run_id == "ev" for e in events)
    by_task: dict[str, list[tuple[str, int | None]]] = {}
    for e in events:
        if e.task is not None:
            by_task.setdefault(e.task, []).append((e.kind, e.attempt))
    assert by_task == {
        "ok": [("task_start", 1), ("task_end", 1)],
        "flaky": [("task_start", 1), ("task_retry", 1), ("task_start", 2), ("task_end", 2)],
        "bad": [("task_start", 1), ("task_end", 1)],
        "off": [("task_start", 1), ("task_skipped", 1)],
        "child": [("task_skipped", 0)],
    }
    ends = {e.task: e.result for e in events if e.kind in ("task_end", "task_skipped")}
    assert ends == results
    assert "listener bug" in caplog.text


def test_on_refuses_an_unknown_event() -> None:
    with pytest.raises(RqdagError, match="task_done"):
        TaskRunnerBuilder().on("task_done", print)


# ---- dry run ---------------------------------------------------------------------------------------


def test_dry_run_runs_nothing_and_reports_what_would_run() -> None:
    calls = Calls()
    tasks = [
        Task("c", calls, ["b"]),
        Task("a", calls),
        Task("b", calls, ["a"]),
        Task("d", calls, condition=calls),
    ]
    events: list[RunEvent] = []
    builder = TaskRunnerBuilder()
    for kind in ("task_start", "task_end"):
        builder.on(kind, events.append)
    results = run(tasks, builder=builder, dry_run=True)
    assert calls.seen == []
    assert events == []
    assert set(results) == {"a", "b", "c", "d"}
    assert all(r.status is TaskStatus.SKIPPED and r.message == "dry run: would run" for r in results.values())
    order = {n: r.data["order"] for n, r in results.items()}
    assert order["a"] < order["b"] < order["c"]


def test_dry_run_with_a_snapshot_shows_what_the_snapshot_keeps() -> None:
    calls = Calls()
    kept = TaskResult.success(data="from before")
    snapshot = {"a": kept, "b": TaskResult.failure("broke"), "c": TaskResult.cancelled("stopped")}
    runner = TaskRunnerBuilder().with_snapshot(snapshot).build()
    tasks = [Task("a", calls), Task("b", calls, ["a"]), Task("c", calls, ["b"])]
    results = runner.execute(tasks, dry_run=True)
    assert calls.seen == []
    assert results["a"] is kept
    assert results["b"].message == "dry run: would run"
    assert results["c"].message == "dry run: would run"
    assert runner.snapshot() == snapshot, "a dry run changes nothing"


# ---- graph drawing with results -------------------------------------------------------------------


def test_to_mermaid_with_and_without_results() -> None:
    tasks = [
        Task("extract", const(1)),
        Task("transform", tasks_for_tests.explode, depends_on=["extract"]),
        Task("load", const(1), depends_on=["transform"]),
    ]
    plain = to_mermaid(tasks)
    assert plain == (
        "flowchart TD\n"
        '    n_extract["extract"]\n'
        '    n_transform["transform"]\n'
        '    n_load["load"]\n'
        "    n_extract --> n_transform\n"
        "    n_transform --> n_load\n"
    )
    coloured = to_mermaid(Workflow("etl", tasks), results=run(tasks))
    assert coloured.startswith(plain)
    extra = coloured[len(plain) :].splitlines()
    assert "    class n_extract success" in extra
    assert "    class n_transform failure" in extra
    assert "    class n_load skipped" in extra
    assert {line.split()[1] for line in extra if line.strip().startswith("classDef")} == {
        "success",
        "failure",
        "skipped",
        "cancelled",
    }


# ---- metrics ----------------------------------------------------------------------------------------


def test_every_result_of_an_attempt_has_start_end_duration_and_attempt() -> None:
    def flaky(ctx: TaskContext) -> int:
        if ctx.attempt == 1:
            raise ValueError("once")
        return 2

    tasks = [
        Task("ok", const(1)),
        Task("flaky", flaky, retry=Retry(attempts=1)),
        Task("bad", tasks_for_tests.explode),
        Task("off", const(1), condition=tasks_for_tests.always_false),
    ]
    results = run(tasks)
    expected_attempts = {"ok": 1, "flaky": 2, "bad": 1, "off": 1}
    for name, result in results.items():
        m = result.metrics
        assert m.started_at is not None and m.finished_at is not None and m.duration_s is not None, name
        assert m.started_at <= m.finished_at
        assert m.duration_s == pytest.approx(m.finished_at - m.started_at, abs=1e-6)
        assert m.attempt == expected_attempts[name]
        assert m.worker is not None
