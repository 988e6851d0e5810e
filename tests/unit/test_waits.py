"""Waits for signals and sleeps, in-process and in the executor's loop: no worker, no slot, no thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from rqdag import TaskContext, TaskResult, TaskRunner, TaskRunnerBuilder, TaskStatus, Workflow
from rqdag.coordinator.executor import WorkflowExecutor
from rqdag.coordinator.inprocess import InProcessDispatcher
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import DecodeError, RqdagError, WorkflowDefinitionError
from rqdag.shared.model.definition import decode_definition, encode_definition
from rqdag.shared.model.holds import HELD_FUNC
from rqdag.shared.model.task import Retry, Task
from rqdag.shared.model.vocabulary import TaskKind

from . import tasks_for_tests

WAIT = 5.0


def approval_flow(timeout_s: float | None = None) -> Workflow:
    wf = Workflow("approve")

    @wf.task()
    def prepare(ctx: TaskContext) -> int:
        return 7

    wf.wait("approval", depends_on=["prepare"], timeout_s=timeout_s)

    @wf.task(depends_on=["approval"])
    def ship(ctx: TaskContext) -> Any:
        return ctx.inputs["approval"]

    return wf


def run_in_thread(runner: TaskRunner, wf: Workflow, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def go() -> None:
        out["results"] = runner.execute(wf, **kwargs)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, out


def until(predicate: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_signal_from_another_thread_completes_the_wait_with_its_data() -> None:
    runner = TaskRunnerBuilder().build()
    thread, out = run_in_thread(runner, approval_flow())
    until(lambda: "prepare" in runner.snapshot())
    assert "approval" not in runner.snapshot()
    runner.signal("approval", data={"by": "ops"})
    thread.join(WAIT)
    results = out["results"]
    assert results["approval"].status is TaskStatus.SUCCESS
    assert results["approval"].data == {"by": "ops"}
    assert results["ship"].data == {"by": "ops"}  # the wait's data is its dependents' input


def test_a_failure_signal_fails_the_wait_and_skips_its_dependents() -> None:
    runner = TaskRunnerBuilder().build()
    thread, out = run_in_thread(runner, approval_flow())
    until(lambda: "prepare" in runner.snapshot())
    runner.signal("approval", status="failure", reason="not today")
    thread.join(WAIT)
    results = out["results"]
    assert results["approval"].status is TaskStatus.FAILURE
    assert results["approval"].message == "signalled failure: not today"
    assert results["ship"].status is TaskStatus.SKIPPED


def test_a_wait_fails_at_its_deadline() -> None:
    started = time.monotonic()
    results = TaskRunnerBuilder().build().execute(approval_flow(timeout_s=0.2))
    assert time.monotonic() - started >= 0.2
    assert results["approval"].status is TaskStatus.FAILURE
    assert results["approval"].message == "no signal within 0.2s"
    assert results["approval"].metrics.attempt == 1  # a wait is not retried


def test_a_sleep_succeeds_when_its_time_has_passed() -> None:
    wf = Workflow("nap")
    wf.sleep("cool_down", seconds=0.3)
    started = time.monotonic()
    results = TaskRunnerBuilder().build().execute(wf)
    assert time.monotonic() - started >= 0.3
    assert results["cool_down"].status is TaskStatus.SUCCESS
    assert results["cool_down"].message == "slept 0.3s"


def test_a_pending_wait_takes_no_concurrency_slot() -> None:
    wf = Workflow("side")
    wf.wait("approval")
    wf.sleep("nap", seconds=30)

    @wf.task()
    def work(ctx: TaskContext) -> str:
        return "done"

    runner = TaskRunnerBuilder().build()
    thread, out = run_in_thread(runner, wf, concurrency=1, timeout=WAIT)
    until(lambda: "work" in runner.snapshot())  # it ran beside the pending wait and sleep
    runner.signal("approval", data=1)
    until(lambda: "approval" in runner.snapshot())
    runner.cancel("enough")
    thread.join(WAIT)
    assert out["results"]["nap"].status is TaskStatus.CANCELLED


def test_a_signal_before_the_wait_is_reached_is_kept_until_it_is() -> None:
    gate = threading.Event()
    wf = Workflow("early")

    @wf.task()
    def prepare(ctx: TaskContext) -> None:
        assert gate.wait(WAIT)

    wf.wait("approval", depends_on=["prepare"])
    runner = TaskRunnerBuilder().build()
    thread, out = run_in_thread(runner, wf)
    until(lambda: runner._dispatcher is not None)
    runner.signal("approval", data="early")
    gate.set()
    thread.join(WAIT)
    assert out["results"]["approval"].data == "early"


def test_a_signal_to_a_task_that_is_not_a_wait_or_has_finished_says_so() -> None:
    runner = TaskRunnerBuilder().build()
    with pytest.raises(RqdagError, match="no execution is running"):
        runner.signal("approval")
    thread, _out = run_in_thread(runner, approval_flow())
    until(lambda: "prepare" in runner.snapshot())
    with pytest.raises(RqdagError, match="'prepare': it is not a wait \\(it is a task\\)"):
        runner.signal("prepare")
    with pytest.raises(RqdagError, match="no such task"):
        runner.signal("nope")
    runner.signal("approval", data=1)
    until(lambda: "approval" in runner.snapshot())
    if thread.is_alive():
        with pytest.raises(RqdagError, match="has finished already \\(success\\)"):
            runner.signal("approval")
    thread.join(WAIT)


def test_the_loop_sleeps_until_the_nearest_timer_and_no_longer() -> None:
    wf = Workflow("timers")
    wf.sleep("nap", seconds=0.25)
    wf.wait("approval", timeout_s=0.5)
    state = TaskStateManager(wf.tasks)
    executor = WorkflowExecutor(state, InProcessDispatcher({}, None), run_id="r", clock=lambda: 0.0)
    assert not executor.step(100.0)
    assert state.running_count == 2  # both reached, neither given to a dispatcher
    assert executor.idle_wait(100.0) == pytest.approx(0.25)
    assert not executor.step(100.25)
    assert state.result("nap") is not None and state.result("nap").status is TaskStatus.SUCCESS  # type: ignore[union-attr]
    assert executor.idle_wait(100.25) == pytest.approx(0.25)
    assert executor.step(100.5)
    assert state.result("approval").message == "no signal within 0.5s"  # type: ignore[union-attr]


def test_a_successful_wait_is_kept_by_a_resumed_runner() -> None:
    runner = TaskRunnerBuilder().build()
    thread, _out = run_in_thread(runner, approval_flow())
    until(lambda: "prepare" in runner.snapshot())
    runner.signal("approval", data="yes")
    thread.join(WAIT)
    snapshot = runner.snapshot()
    again = TaskRunnerBuilder().with_snapshot(snapshot).build().execute(approval_flow())
    assert again["approval"] == snapshot["approval"]  # not waited for again


def test_waits_and_sleeps_in_a_stored_definition() -> None:
    wf = Workflow("stored")
    wf.add(Task("prepare", "tests.unit.tasks_for_tests:answer"))
    wf.wait("approval", depends_on=["prepare"], timeout_s=60)
    wf.add(Task("ship", "tests.unit.tasks_for_tests:answer", depends_on=["approval"]))
    wf.sleep("cool_down", seconds=3600, depends_on=["ship"])
    back = {t.name: t for t in decode_definition(encode_definition(wf), run_id="r").tasks}
    assert back["approval"].kind is TaskKind.WAIT and back["approval"].timeout_s == 60
    assert back["cool_down"].kind is TaskKind.SLEEP and back["cool_down"].seconds == 3600
    assert back["ship"].kind is TaskKind.TASK
    assert back["cool_down"].definition_hash() == wf.tasks[-1].definition_hash()
    bad = encode_definition(wf).replace(b'"kind":"sleep"', b'"kind":"nap"')
    with pytest.raises(DecodeError, match="run 'r': definition"):
        decode_definition(bad, run_id="r")


def test_bad_wait_and_sleep_settings_are_definition_errors() -> None:
    wf = Workflow("bad")
    with pytest.raises(WorkflowDefinitionError, match="a sleep needs seconds >= 0"):
        wf.sleep("nap", seconds=-1)
    with pytest.raises(WorkflowDefinitionError, match="only a sleep takes seconds"):
        Task("w", HELD_FUNC, kind=TaskKind.WAIT, seconds=3)
    with pytest.raises(WorkflowDefinitionError, match="a wait takes no retry"):
        Task("w", HELD_FUNC, kind=TaskKind.WAIT, retry=Retry(attempts=2))
    with pytest.raises(WorkflowDefinitionError, match="kind must be one of task, wait, sleep"):
        Task("w", HELD_FUNC, kind="nap")  # type: ignore[arg-type]
    assert isinstance(TaskResult.success(1), TaskResult)


def test_a_last_wait_that_ends_as_it_is_reached_is_published_in_the_same_step() -> None:
    wf = Workflow("last")
    wf.wait("approval")
    state = TaskStateManager(wf.tasks)
    dispatcher = InProcessDispatcher({}, None)
    recorded: dict[str, TaskResult] = {}
    dispatcher.record = recorded.update  # type: ignore[method-assign]
    executor = WorkflowExecutor(state, dispatcher, run_id="r", clock=lambda: 0.0)
    dispatcher.signal("approval", TaskResult.success("ok"))
    assert executor.step(1.0)
    assert recorded["approval"].data == "ok"  # recorded, not only in memory


def test_a_subflow_is_stored_with_its_child_workflow_and_needs_redis() -> None:
    child = Workflow("billing")
    child.add(Task("invoice", "tests.unit.tasks_for_tests:answer"))
    wf = Workflow("orders")
    wf.add(Task("prepare", "tests.unit.tasks_for_tests:answer"))
    wf.subflow(child, "billing", depends_on=["prepare"])(tasks_for_tests.answer)
    assert [(t.name, t.kind) for t in wf.tasks][1:] == [
        ("billing.params", TaskKind.TASK),
        ("billing", TaskKind.SUBFLOW),
    ]
    back = {t.name: t for t in decode_definition(encode_definition(wf), run_id="r").tasks}
    assert back["billing"].subflow is not None and back["billing"].subflow.tasks[0].name == "invoice"
    assert back["billing"].definition_hash() == wf.tasks[-1].definition_hash()
    with pytest.raises(WorkflowDefinitionError, match="child runs require Redis"):
        TaskRunnerBuilder().build().execute(wf)
    with pytest.raises(WorkflowDefinitionError, match="part of its child run's id"):
        Workflow("x").subflow(child, "bad name")(tasks_for_tests.answer)
