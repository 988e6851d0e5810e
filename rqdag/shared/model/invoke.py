"""Calling a task function and turning what happens into a TaskResult.

This is the one place that catches ``Exception`` from user code; in-process and
on workers alike, a task call goes through :func:`invoke_attempt` (or
:func:`ainvoke_attempt`). It also decides, while the exception is at hand,
whether the task's ``Retry(on=...)`` lets a retry follow the failure. And it is
where a process forked by the task ends: a child that returns from the task (or
raises out of it) exits at once with ``os._exit``, before it could touch Redis
or go back to serving jobs as a copy of the worker.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from rqdag.errors import EncodeError
from rqdag.shared.model.codec import dumps
from rqdag.shared.model.context import TaskContext
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.retry import Retry
from rqdag.shared.model.vocabulary import TaskStatus

RQDAG_ROOT = str(Path(__file__).resolve().parents[2]) + os.sep  # the rqdag package's folder


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the first frame that is not rqdag's own (the user's code)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _is_rqdag_frame(tb):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _is_rqdag_frame(tb: TracebackType) -> bool:
    return str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(RQDAG_ROOT)


ANY_RETRY = Retry()
_SKIPPED = TaskResult.skipped("condition is false")
Raised = type[BaseException] | None  # the type of the exception a failed call raised, if any


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one call of a task came to: its result, and whether a retry may follow it if it failed."""

    result: TaskResult
    retryable: bool = True


def invoke_attempt(
    func: Callable[[TaskContext], Any],
    ctx: TaskContext,
    *,
    condition: Callable[[TaskContext], Any] | None = None,
    worker: str | None = None,
    definition_hash: str | None = None,
    retry: Retry = ANY_RETRY,
) -> Attempt:
    """Run the condition (if any) and the task; never raises for the task's own errors.

    The result, and whether a retry may follow it: a failure is retryable when
    ``retry.allows`` the exception it raised (a failure returned as a TaskResult
    raised none).
    """
    clock = _Stopwatch(ctx, worker, definition_hash, retry)
    return clock.attempt(*_call(func, ctx, condition))


async def ainvoke_attempt(
    func: Callable[[TaskContext], Any],
    ctx: TaskContext,
    *,
    condition: Callable[[TaskContext], Any] | None = None,
    worker: str | None = None,
    definition_hash: str | None = None,
    retry: Retry = ANY_RETRY,
) -> Attempt:
    """:func:`invoke_attempt` for an ``async def`` task (or condition): awaited, on the caller's loop.

    A cancellation (the task's timeout) propagates: it is not the task's own error.
    """
    clock = _Stopwatch(ctx, worker, definition_hash, retry)
    return clock.attempt(*await _acall(func, ctx, condition))


def invoke_task(
    func: Callable[[TaskContext], Any],
    ctx: TaskContext,
    *,
    condition: Callable[[TaskContext], Any] | None = None,
    worker: str | None = None,
    definition_hash: str | None = None,
) -> TaskResult:
    """The result of :func:`invoke_attempt` alone."""
    attempt = invoke_attempt(func, ctx, condition=condition, worker=worker, definition_hash=definition_hash)
    return attempt.result


async def ainvoke_task(
    func: Callable[[TaskContext], Any],
    ctx: TaskContext,
    *,
    condition: Callable[[TaskContext], Any] | None = None,
    worker: str | None = None,
    definition_hash: str | None = None,
) -> TaskResult:
    """The result of :func:`ainvoke_attempt` alone."""
    attempt = await ainvoke_attempt(
        func, ctx, condition=condition, worker=worker, definition_hash=definition_hash
    )
    return attempt.result


def is_async(func: Callable[..., Any] | None) -> bool:
    """True for an ``async def`` function (or an object whose ``__call__`` is one)."""
    if func is None:
        return False
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 (a callable object's own method)
    )


class _Stopwatch:
    """Started when a call begins; makes its Attempt, measured, when the call ends."""

    def __init__(
        self, ctx: TaskContext, worker: str | None, definition_hash: str | None, retry: Retry
    ) -> None:
        self.ctx = ctx
        self.worker = worker
        self.definition_hash = definition_hash
        self.retry = retry
        self.started_wall = time.time()
        self.started = time.perf_counter()

    def attempt(self, result: TaskResult, raised: Raised) -> Attempt:
        """``result`` with its metrics, and whether ``retry`` allows a retry after what it ``raised``."""
        duration = time.perf_counter() - self.started
        metrics = TaskMetrics(
            started_at=self.started_wall,
            finished_at=self.started_wall + duration,
            duration_s=duration,
            attempt=self.ctx.attempt,
            worker=self.worker,
        )
        result = dataclasses.replace(result, metrics=metrics, definition_hash=self.definition_hash)
        return Attempt(result, result.status is not TaskStatus.FAILURE or self.retry.allows(raised))


def _call(
    func: Callable[[TaskContext], Any],
    ctx: TaskContext,
    condition: Callable[[TaskContext], Any] | None,
) -> tuple[TaskResult, Raised]:
    pid = os.getpid()
    try:
        if condition is not None and not _in_this_process(condition, ctx, pid):
            return _SKIPPED, None
        value = _in_this_process(func, ctx, pid)
    except SystemExit as exc:
        if threading.current_thread() is threading.main_thread():
            raise  # a worker's cold shutdown (RQ raises SystemExit in its main thread)
        return _raised(exc, SystemExit)
    except Exception as exc:  # the task boundary: any error becomes a failure result
        return _raised(exc)
    if inspect.isawaitable(value):  # an async callable the caller did not know was one
        if inspect.iscoroutine(value):
            value.close()  # never awaited: said here, not as a RuntimeWarning
        return TaskResult.failure(f"task '{ctx.task}' is async: it must be awaited (ainvoke_task)"), None
    return _as_result(value, ctx), None


async def _acall(
    func: Callable[[TaskContext], Any],
    ctx: TaskContext,
    condition: Callable[[TaskContext], Any] | None,
) -> tuple[TaskResult, Raised]:
    pid = os.getpid()
    try:
        if condition is not None and not await _awaited(condition, ctx, pid):
            return _SKIPPED, None
        value = await _awaited(func, ctx, pid)
    except Exception as exc:  # the task boundary: any error becomes a failure result
        return _raised(exc)
    return _as_result(value, ctx), None


def _raised(exc: BaseException, kind: type[BaseException] | None = None) -> tuple[TaskResult, Raised]:
    """The failure of a call that raised ``exc`` (as ``kind``, else its own type), with the user's
    traceback, and that type."""
    raised = kind or type(exc)
    return TaskResult.failure(f"{raised.__name__}: {exc}", error=user_traceback(exc)), raised


async def _awaited(call: Callable[[TaskContext], Any], ctx: TaskContext, pid: int) -> Any:
    """``call(ctx)``, awaited when it returns an awaitable; a forked child exits as in the sync path."""
    value = _in_this_process(call, ctx, pid)
    if inspect.isawaitable(value):
        value = await value
        if os.getpid() != pid:
            os._exit(0)
    return value


def _as_result(value: Any, ctx: TaskContext) -> TaskResult:
    result = value if isinstance(value, TaskResult) else TaskResult(TaskStatus.SUCCESS, data=value)
    try:
        dumps(result.data, what=f"the value returned by task '{ctx.task}'")
    except EncodeError as exc:
        return TaskResult.failure(str(exc))
    return result


def _in_this_process(call: Callable[[TaskContext], Any], ctx: TaskContext, pid: int) -> Any:
    """``call(ctx)``; in a child the call forked, ``os._exit`` instead of returning or raising."""
    try:
        value = call(ctx)
    except BaseException as exc:
        if os.getpid() != pid:
            os._exit(_exit_code(exc))
        raise
    if os.getpid() != pid:
        os._exit(0)
    return value


def _exit_code(exc: BaseException) -> int:
    """The exit status of a forked child that raised ``exc``: its SystemExit code, else 1."""
    if isinstance(exc, SystemExit):
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 1
