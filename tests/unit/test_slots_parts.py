"""Pieces of the concurrent worker that need no Redis: its class choice, settings, attempts, deadlines."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rqdag.errors import RqdagError
from rqdag.shared import aio
from rqdag.shared.model.context import TaskContext
from rqdag.shared.model.invoke import ainvoke_task, invoke_task, is_async
from rqdag.shared.model.task import TaskStatus
from rqdag.worker.deadline import call_with_deadline
from rqdag.worker.environment import CurrentAttempt, WorkerSettings
from rqdag.worker.start import resolve_worker_class


def test_more_than_one_slot_picks_the_concurrent_class_and_refuses_forking_ones() -> None:
    assert resolve_worker_class("simple", 1) == "simple"
    assert resolve_worker_class("simple", 4) == "concurrent"
    assert resolve_worker_class("concurrent", 1) == "concurrent"
    with pytest.raises(RqdagError, match="one task per process"):
        resolve_worker_class("fork", 2)
    with pytest.raises(RqdagError, match="concurrency must be an integer >= 1"):
        WorkerSettings(tasks=("m",), concurrency=0)


def test_current_attempt_keeps_one_attempt_per_slot_thread() -> None:
    current = CurrentAttempt()
    ready = threading.Barrier(3)
    release = threading.Event()

    def slot(task: str) -> None:
        current.set("r", task, f"1-{task}")
        ready.wait()
        release.wait()
        current.clear()

    threads = [threading.Thread(target=slot, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    ready.wait()
    assert sorted(current.all()) == [("r", "a", "1-a"), ("r", "b", "1-b")]
    release.set()
    for thread in threads:
        thread.join()
    assert current.all() == [] and current.get() is None


def test_an_abandoned_call_frees_its_caller_at_the_deadline() -> None:
    told = threading.Event()
    started = time.monotonic()
    expired, value = call_with_deadline(lambda: time.sleep(2) or 1, 0.2, told.set, abandon=True)
    assert expired and value is None and told.is_set()
    assert time.monotonic() - started < 1.5
    assert call_with_deadline(lambda: 7, 1.0, told.set, abandon=True) == (False, 7)


async def _double(ctx: TaskContext) -> int:
    await asyncio.sleep(0)
    return ctx.attempt * 2


async def _boom(ctx: TaskContext) -> None:
    raise ValueError("no")


def test_async_tasks_are_awaited_on_the_shared_loop_and_errors_become_failures() -> None:
    ctx = TaskContext(
        run_id="r", task="t", attempt=3, params={}, inputs={}, context=None, idempotency_key="k"
    )
    assert is_async(_double) and not is_async(len)
    ok = aio.submit(ainvoke_task(_double, ctx)).result(5)
    assert ok.status is TaskStatus.SUCCESS and ok.data == 6
    failed = aio.submit(ainvoke_task(_boom, ctx)).result(5)
    assert failed.status is TaskStatus.FAILURE and "ValueError: no" in (failed.message or "")
    misused = invoke_task(_double, ctx)
    assert misused.status is TaskStatus.FAILURE and "is async" in (misused.message or "")
