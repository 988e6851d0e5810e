"""The worker's parts in-process: registry, context holder, deadline, job fields."""

from __future__ import annotations

import ast
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rq.timeouts import HorseMonitorTimeoutException, JobTimeoutException

import rqdag.worker
from rqdag.errors import RqdagError, TaskNotAllowedError
from rqdag.shared.model.job import TaskJob
from rqdag.worker import build_registry
from rqdag.worker.context import ContextHolder, load_context
from rqdag.worker.deadline import call_with_deadline
from rqdag.worker.environment import WorkerSettings
from rqdag.worker.rq_timeouts import TaskJobTimeoutOff
from rqdag.worker.rqheartbeat import MIN_HEARTBEAT_INTERVAL_S
from rqdag.worker.start import create_worker
from tests.support.workers import TASKS

# -- registry ------------------------------------------------------------------


def test_registry_holds_the_functions_defined_in_the_tasks_modules() -> None:
    registry = build_registry([TASKS])

    assert f"{TASKS}:echo" in registry and f"{TASKS}:make_context" in registry
    assert registry.lookup(f"{TASKS}:echo").__name__ == "echo"
    assert f"{TASKS}:getpid" not in registry  # imported into the module, not defined in it
    assert "os:getpid" not in registry
    assert registry.modules == (TASKS,)


def test_registry_holds_the_paths_named_by_workflows_of_the_tasks_modules() -> None:
    registry = build_registry([TASKS])

    assert "operator:truth" in registry  # the condition of a task of worker_tasks.flow
    assert not any("lambda" in path for path in registry.functions)


def test_lookup_of_an_unregistered_path_names_it_and_the_modules() -> None:
    registry = build_registry([TASKS])

    with pytest.raises(TaskNotAllowedError) as caught:
        registry.lookup("os:system")
    message = str(caught.value)
    assert "'os:system' is not a registered task on this worker" in message
    assert f"--tasks modules: {TASKS}" in message


@pytest.mark.parametrize("module", ["tests.integration.no_such_module", "pkg.mod:func", ""])
def test_a_tasks_module_that_cannot_be_imported_is_named(module: str) -> None:
    with pytest.raises(RqdagError, match="--tasks"):
        build_registry([module])


# -- context -------------------------------------------------------------------


class Factory:
    """A context factory that counts its calls and fails when told to."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[int] = []
        self.failures = failures

    def __call__(self) -> dict[str, Any]:
        self.calls.append(os.getpid())
        if len(self.calls) <= self.failures:
            raise ConnectionError("database down")
        return {"n": len(self.calls)}


def test_the_context_is_built_once_per_process() -> None:
    factory = Factory()
    holder = ContextHolder(factory, "x:factory")

    assert holder.get() is holder.get()
    assert factory.calls == [os.getpid()]


def test_a_failing_context_factory_is_named_and_called_again_later() -> None:
    factory = Factory(failures=1)
    holder = ContextHolder(factory, "x:factory")

    with pytest.raises(RqdagError, match=r"the --context factory 'x:factory' failed: ConnectionError"):
        holder.get()
    assert holder.get() == {"n": 2}
    assert holder.get() == {"n": 2}


def test_no_context_factory_means_none() -> None:
    assert load_context(None).get() is None
    with pytest.raises(RqdagError, match="--context factory"):
        load_context("tests.integration.worker_tasks:no_such_factory")


# -- deadline ------------------------------------------------------------------


@pytest.mark.timeout(30, method="thread")  # the alarm under test must not meet pytest-timeout's
def test_the_deadline_interrupts_the_main_thread() -> None:
    expired = threading.Event()
    started = time.monotonic()

    timed_out, value = call_with_deadline(lambda: time.sleep(5), 0.2, expired.set)

    assert timed_out and value is None and expired.is_set()
    assert time.monotonic() - started < 2
    assert call_with_deadline(lambda: 42, 0.3, expired.set) == (False, 42)
    time.sleep(0.5)  # the alarm of the second call was cancelled: nothing fires now


@pytest.mark.timeout(30, method="thread")
def test_a_task_that_swallows_the_interruption_still_timed_out() -> None:
    def stubborn() -> str:
        try:
            time.sleep(5)
        except BaseException:
            return "ignored it"
        return "slept"

    assert call_with_deadline(stubborn, 0.2, lambda: None) == (True, None)


def test_off_the_main_thread_the_deadline_is_cooperative() -> None:
    outcome: list[tuple[bool, Any]] = []
    expired = threading.Event()

    def task() -> str:
        expired.wait(5)  # a cooperative task watches ctx.cancelled
        return "late"

    thread = threading.Thread(target=lambda: outcome.append(call_with_deadline(task, 0.2, expired.set)))
    thread.start()
    thread.join(10)

    assert outcome == [(True, None)]


def test_no_timeout_means_no_deadline() -> None:
    assert call_with_deadline(lambda: "done", None, lambda: None) == (False, "done")


# -- RQ's job timeout is off, its horse monitor alarm is not -------------------


@pytest.mark.timeout(30, method="thread")
def test_rq_job_timeouts_are_off_but_the_horse_monitor_alarm_is_on() -> None:
    with TaskJobTimeoutOff(1, JobTimeoutException):
        time.sleep(1.2)  # would raise JobTimeoutException with RQ's default class
    with pytest.raises(HorseMonitorTimeoutException), TaskJobTimeoutOff(1, HorseMonitorTimeoutException):
        time.sleep(3)


# -- job fields and settings ---------------------------------------------------


def test_job_kwargs_round_trip() -> None:
    spec = TaskJob(
        run_id="r",
        task="t",
        token="k",
        attempt=2,
        func="m:f",
        condition="m:c",
        depends_on=("a", "b"),
        timeout_s=1.5,
        retries=3,
        at_most_once=True,
        definition_hash="h",
    )
    assert TaskJob.from_kwargs(spec.to_kwargs()) == spec
    assert TaskJob.from_kwargs({**spec.to_kwargs(), "added_later": 1}) == spec


@pytest.mark.parametrize(
    ("field", "value"),
    [("token", None), ("attempt", "1"), ("depends_on", "a"), ("timeout_s", 0), ("at_most_once", "yes")],
)
def test_malformed_job_kwargs_name_the_field(field: str, value: Any) -> None:
    kwargs = TaskJob(run_id="r", task="t", token="k", attempt=1, func="m:f").to_kwargs()
    kwargs[field] = value
    with pytest.raises(RqdagError, match=f"run 'r', task 't'.*field '{field}'"):
        TaskJob.from_kwargs(kwargs)


def test_worker_settings_are_checked() -> None:
    assert WorkerSettings(tasks=TASKS).tasks == (TASKS,)  # type: ignore[arg-type]
    with pytest.raises(RqdagError, match="at least one --tasks"):
        WorkerSettings(tasks=())
    with pytest.raises(RqdagError, match="heartbeat_interval"):
        WorkerSettings(tasks=(TASKS,), heartbeat_interval=0)
    with pytest.raises(RqdagError, match="max_result_bytes"):
        WorkerSettings(tasks=(TASKS,), max_result_bytes=0)


# -- package boundaries --------------------------------------------------------


def test_the_worker_package_exports_little() -> None:
    assert sorted(rqdag.worker.__all__) == ["build_registry", "run_task", "start_worker"]


def test_the_worker_package_never_imports_the_coordinator() -> None:
    folder = Path(rqdag.worker.__file__).parent
    for source in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(name.startswith("rqdag.coordinator") for name in names), source.name


# -- RQ's worker heartbeat -----------------------------------------------------


def test_the_worker_heartbeat_is_one_round_trip_at_most_once_a_second(redis_conn: Any) -> None:
    worker = create_worker(redis_conn, WorkerSettings(tasks=(TASKS,)), name="beating")
    worker.register_birth()
    pool = redis_conn.connection_pool
    original = pool.get_connection

    def round_trips(**kwargs: Any) -> int:
        """How many commands or pipelines one heartbeat() sent (a connection checkout each)."""
        sent: list[int] = []

        def counting(*a: Any, **k: Any) -> Any:
            sent.append(1)
            return original(*a, **k)

        pool.get_connection = counting
        try:
            worker.heartbeat(**kwargs)
        finally:
            pool.get_connection = original
        return len(sent)

    assert round_trips() == 1, "HSET and both EXPIREs go in one pipeline"
    first = redis_conn.hget(worker.key, "last_heartbeat")
    assert 0 < redis_conn.ttl(worker.key) <= worker.worker_ttl + 60
    time.sleep(0.01)
    assert round_trips() == 0 and round_trips() == 0, "within a second of the last one: skipped"
    assert redis_conn.hget(worker.key, "last_heartbeat") == first
    assert round_trips(timeout=90) == 1, "an explicit timeout (the fork monitor's) is never skipped"
    assert redis_conn.ttl(worker.key) <= 90
    time.sleep(MIN_HEARTBEAT_INTERVAL_S)
    assert round_trips() == 1
    assert redis_conn.hget(worker.key, "last_heartbeat") != first
    worker.register_death()
