"""Calling a task function: its worker context, its timeout, threads or the event loop.

A plain function runs under :func:`~rqdag.worker.deadline.call_with_deadline`
(in a slot of a concurrent worker it is abandoned at its timeout, its slot
freed, ``ctx.cancelled`` set); an ``async def`` one is awaited on the process's
one event loop and cancelled at its timeout. A time-out is a failure that
counts as a ``TimeoutError`` for the task's ``Retry(on=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from rqdag.shared import aio
from rqdag.shared.model.context import TaskContext
from rqdag.shared.model.invoke import Attempt, ainvoke_attempt, invoke_attempt, is_async
from rqdag.shared.model.job import TaskJob
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.retry import Retry
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.worker.context import ContextHolder
from rqdag.worker.deadline import call_with_deadline
from rqdag.worker.environment import WorkerEnvironment

log = logging.getLogger("rqdag.worker")

TaskFunction = Callable[[TaskContext], Any]


def call_task(
    env: WorkerEnvironment,
    spec: TaskJob,
    func: TaskFunction,
    condition: TaskFunction | None,
    ctx: TaskContext,
    retry: Retry,
) -> Attempt:
    """Call ``func`` (after ``condition``) on ``ctx`` under the task's timeout: the attempt."""
    started = time.time()
    with_context = _WithContext(func, env.context)
    with_condition = _WithContext(condition, env.context) if condition is not None else None
    if is_async(func) or is_async(condition):
        attempt = _await_on_loop(env, spec, with_context, with_condition, ctx, retry)
    else:

        def invoke() -> Attempt:
            return invoke_attempt(
                with_context,
                ctx,
                condition=with_condition,
                worker=env.worker_name,
                definition_hash=spec.definition_hash,
                retry=retry,
            )

        attempt = call_with_deadline(invoke, spec.timeout_s, ctx.cancelled.set, abandon=env.slots > 1)[1]
    if attempt is None:
        log.warning("run %r, task %r: timed out after %gs", spec.run_id, spec.task, spec.timeout_s or 0)
        result = TaskResult(
            TaskStatus.FAILURE,
            message=f"timed out after {spec.timeout_s or 0:g}s",
            metrics=attempt_metrics(env, spec, started),
            definition_hash=spec.definition_hash,
        )
        return Attempt(result, retry.allows(TimeoutError))  # a time-out counts as a TimeoutError
    return attempt


def _await_on_loop(
    env: WorkerEnvironment,
    spec: TaskJob,
    func: TaskFunction,
    condition: TaskFunction | None,
    ctx: TaskContext,
    retry: Retry,
) -> Attempt | None:
    """An ``async def`` task awaited on the process's event loop; None when cancelled at its timeout."""

    async def attempt() -> Attempt | None:
        call = ainvoke_attempt(
            func,
            ctx,
            condition=condition,
            worker=env.worker_name,
            definition_hash=spec.definition_hash,
            retry=retry,
        )
        try:
            return await asyncio.wait_for(call, spec.timeout_s)
        except TimeoutError:
            ctx.cancelled.set()
            return None

    return aio.submit(attempt()).result()


class _WithContext:
    """A task function (or condition) that first gives ``ctx`` the worker's context object.

    The context is built inside the task boundary, so a failing ``--context``
    factory becomes the task's failure like any error of user code.
    """

    def __init__(self, target: TaskFunction, holder: ContextHolder) -> None:
        self.target = target
        self.holder = holder

    def __call__(self, ctx: TaskContext) -> Any:
        ctx.context = self.holder.get()
        return self.target(ctx)


def own_failure(env: WorkerEnvironment, spec: TaskJob, message: str) -> TaskResult:
    """A failure the worker decided without calling the task."""
    return TaskResult(
        TaskStatus.FAILURE,
        message=message,
        metrics=attempt_metrics(env, spec, time.time()),
        definition_hash=spec.definition_hash,
    )


def attempt_metrics(env: WorkerEnvironment, spec: TaskJob, started: float) -> TaskMetrics:
    """The metrics of an attempt that started at ``started`` and ends now."""
    finished = time.time()
    return TaskMetrics(
        started_at=started,
        finished_at=finished,
        duration_s=finished - started,
        attempt=spec.attempt,
        worker=env.worker_name,
    )
