"""The job function of every rqdag task: start, build the TaskContext, call, finish.

:func:`run_task` is the only function an rqdag worker runs. One attempt is:

1. **start** (one script, one round trip): claim the attempt and read the run's
   params and the dependencies' results; a run that is gone, a task that already
   succeeded, a token that is not current or a run being cancelled: return
   without running anything;
2. look the job's function (and condition) up in the worker's registry: a path
   that is not registered is never imported, it ends in a final failure;
3. call the task through :func:`rqdag.shared.invoke.invoke_task`, under its
   ``timeout_s`` and with a heartbeat running;
4. cap the result's size, then **finish** (one script): the result is written
   when it is final, kept in the dispatch entry when a retry follows, and refused
   when the token is no longer current.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rqdag.errors import DecodeError, EncodeError, TaskNotAllowedError
from rqdag.shared import aio, metrics, traces
from rqdag.shared.model.codec import decode_result, encode_result, loads
from rqdag.shared.model.context import TaskContext, idempotency_key
from rqdag.shared.model.invoke import ainvoke_task, invoke_task, is_async
from rqdag.shared.model.job import TaskJob
from rqdag.shared.model.task import TaskMetrics, TaskResult, TaskStatus
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts import FinishOutcome, Start, StartOutcome
from rqdag.worker import rq_outcome
from rqdag.worker.context import ContextHolder
from rqdag.worker.deadline import call_with_deadline
from rqdag.worker.environment import WorkerEnvironment, current_environment
from rqdag.worker.heartbeat import Heartbeat
from rqdag.worker.inputs import ABSENT, eager_dependencies, with_lazy

log = logging.getLogger("rqdag.worker")

TaskFunction = Callable[[TaskContext], Any]

# Results up to this size also travel in their 'finished' event, so the coordinator
# applies a batch of completions without reading the results hash.
INLINE_RESULT_BYTES = 2048


@traces.traced_attempt(lambda: current_environment().worker_name)
def run_task(**kwargs: Any) -> str:
    """Run one attempt of one task (the kwargs are :class:`~rqdag.shared.model.job.TaskJob`'s fields).

    Returns what happened, for RQ's own job result: ``success`` or ``skipped``, or
    ``gone`` / ``done`` / ``stale`` when the attempt was not started. An attempt
    that ended ``failure`` or ``cancelled``, whose result came too late to be
    written (``refused``), or that was not started because its run is being
    cancelled raises :class:`~rqdag.worker.rq_outcome.AttemptNotCompleted` once
    rqdag's own steps are done, so RQ records its job as failed.
    """
    env = current_environment()
    spec = TaskJob.from_kwargs(kwargs)
    keys = RunKeys(spec.run_id)
    start = env.scripts.start_task(
        keys,
        task=spec.task,
        token=spec.token,
        worker=env.worker_name,
        now=time.time(),
        heartbeat_timeout_s=env.heartbeat_timeout_s,
        depends_on=eager_dependencies(spec),
    )
    if start.outcome is not StartOutcome.OK:
        _log_not_started(spec, start)
        return rq_outcome.not_started(spec, start)
    metrics.task_started(spec.workflow, spec.task, spec.dispatched_at)
    env.current.set(spec.run_id, spec.task, spec.token)
    try:
        result, final = _attempt(env, spec, start.params, start.inputs)
        result, encoded = _encode_capped(spec, result, env.max_result_bytes)
        outcome = _finish(env, spec, keys, result, encoded, final)
        return rq_outcome.after_finish(spec, outcome, result)  # after the finish: RQ's view of it
    finally:
        env.current.clear()


def _attempt(
    env: WorkerEnvironment, spec: TaskJob, raw_params: bytes, raw_deps: Sequence[bytes | None]
) -> tuple[TaskResult, bool]:
    """The attempt's result, and whether it is final whatever the retries left."""
    try:
        func = env.registry.lookup(spec.func)
        condition = env.registry.lookup(spec.condition) if spec.condition else None
    except TaskNotAllowedError as exc:
        log.error("run %r, task %r: %s", spec.run_id, spec.task, exc)
        return _own_failure(env, spec, str(exc)), True
    try:
        params = _decode_params(spec, raw_params)
        inputs = with_lazy(spec, _decode_inputs(spec, raw_deps), lambda dep: _read_input(env, spec, dep))
    except DecodeError as exc:
        log.error("%s", exc)
        return _own_failure(env, spec, str(exc)), True
    ctx = TaskContext(
        run_id=spec.run_id,
        task=spec.task,
        attempt=spec.attempt,
        params=params,
        inputs=inputs,
        context=None,
        idempotency_key=idempotency_key(spec.run_id, spec.task),
        item=spec.item,
    )
    heartbeat = Heartbeat(
        env.scripts,
        RunKeys(spec.run_id),
        spec.task,
        spec.token,
        env.heartbeat_interval,
        ctx.cancelled,
        env.ticker,
        env.beats,
    )
    with heartbeat, env.logs.capture(spec.run_id, spec.task, spec.attempt):
        result = _call(env, spec, func, condition, ctx)
    return result, False


def _call(
    env: WorkerEnvironment,
    spec: TaskJob,
    func: TaskFunction,
    condition: TaskFunction | None,
    ctx: TaskContext,
) -> TaskResult:
    started = time.time()
    with_context = _WithContext(func, env.context)
    with_condition = _WithContext(condition, env.context) if condition is not None else None
    if is_async(func) or is_async(condition):
        result = _await_on_loop(env, spec, with_context, with_condition, ctx)
    else:

        def invoke() -> TaskResult:
            return invoke_task(
                with_context,
                ctx,
                condition=with_condition,
                worker=env.worker_name,
                definition_hash=spec.definition_hash,
            )

        result = call_with_deadline(invoke, spec.timeout_s, ctx.cancelled.set, abandon=env.slots > 1)[1]
    if result is None:
        log.warning("run %r, task %r: timed out after %gs", spec.run_id, spec.task, spec.timeout_s or 0)
        return TaskResult(
            TaskStatus.FAILURE,
            message=f"timed out after {spec.timeout_s or 0:g}s",
            metrics=_metrics(env, spec, started),
            definition_hash=spec.definition_hash,
        )
    return result


def _await_on_loop(
    env: WorkerEnvironment,
    spec: TaskJob,
    func: TaskFunction,
    condition: TaskFunction | None,
    ctx: TaskContext,
) -> TaskResult | None:
    """An ``async def`` task awaited on the process's event loop; None when cancelled at its timeout."""

    async def attempt() -> TaskResult | None:
        call = ainvoke_task(
            func, ctx, condition=condition, worker=env.worker_name, definition_hash=spec.definition_hash
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


def _finish(
    env: WorkerEnvironment, spec: TaskJob, keys: RunKeys, result: TaskResult, encoded: bytes, final: bool
) -> str:
    final = final or result.status != TaskStatus.FAILURE or spec.attempt > spec.retries
    outcome = env.scripts.finish_task(
        keys,
        task=spec.task,
        token=spec.token,
        result=encoded,
        status=result.status.value,
        final=final,
        now=time.time(),
        inline=len(encoded) <= INLINE_RESULT_BYTES,
    )
    metrics.task_finished(spec.workflow, spec.task, result, refused=outcome is not FinishOutcome.WRITTEN)
    if outcome is not FinishOutcome.WRITTEN:
        log.warning(
            "run %r, task %r: late result refused (token %s is no longer current; status was %s)",
            spec.run_id,
            spec.task,
            spec.token,
            result.status.value,
        )
        return "refused"
    return result.status.value


def _encode_capped(spec: TaskJob, result: TaskResult, limit: int) -> tuple[TaskResult, bytes]:
    """``result`` and its JSON, or a failure saying why it cannot be stored (not JSON, too large)."""
    what = _what(spec)
    try:
        encoded = encode_result(result, what=what)
    except EncodeError as exc:
        return _replaced_by_failure(spec, result, str(exc))
    if len(encoded) <= limit:
        return result, encoded
    return _replaced_by_failure(
        spec,
        result,
        f"task '{spec.task}': its result is {len(encoded)} bytes, over this worker's limit of {limit} "
        "bytes (max_result_bytes): store large data elsewhere and return a reference",
    )


def _replaced_by_failure(spec: TaskJob, result: TaskResult, message: str) -> tuple[TaskResult, bytes]:
    log.warning("run %r: %s", spec.run_id, message)
    failure = dataclasses.replace(result, status=TaskStatus.FAILURE, message=message, error=None, data=None)
    return failure, encode_result(failure, what=_what(spec))


def _decode_params(spec: TaskJob, raw: bytes) -> Mapping[str, Any]:
    what = f"run '{spec.run_id}', task '{spec.task}': the run's params"
    params = loads(raw, what=what)
    if not isinstance(params, dict):
        raise DecodeError(f"{what} must be a JSON object, got {type(params).__name__}")
    return params


def _decode_inputs(spec: TaskJob, raw_deps: Sequence[bytes | None]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for dep, raw in zip(eager_dependencies(spec), raw_deps, strict=False):
        value = _input_of(spec, dep, raw)
        if value is not ABSENT:
            inputs[dep] = value
    return inputs


def _input_of(spec: TaskJob, dep: str, raw: bytes | None) -> Any:
    """The data dependency ``dep`` passes on, or ABSENT."""
    if raw is None:
        return ABSENT
    what = f"run '{spec.run_id}', task '{spec.task}': stored result of dependency '{dep}'"
    result = decode_result(raw, what=what)
    if result.status == TaskStatus.SUCCESS or (
        result.status == TaskStatus.FAILURE and dep in spec.mapped_inputs
    ):  # a failed mapped task passes its successful children's data on (continue_on_error)
        return result.data
    return ABSENT


def _read_input(env: WorkerEnvironment, spec: TaskJob, dep: str) -> Any:
    """A lazy dependency's data, read when the task first reads it (a child's source)."""
    raw: Any = env.connection.hget(RunKeys(spec.run_id).results, dep)
    return _input_of(spec, dep, raw)


def _own_failure(env: WorkerEnvironment, spec: TaskJob, message: str) -> TaskResult:
    """A failure the worker decided without calling the task."""
    return TaskResult(
        TaskStatus.FAILURE,
        message=message,
        metrics=_metrics(env, spec, time.time()),
        definition_hash=spec.definition_hash,
    )


def _metrics(env: WorkerEnvironment, spec: TaskJob, started: float) -> TaskMetrics:
    finished = time.time()
    return TaskMetrics(
        started_at=started,
        finished_at=finished,
        duration_s=finished - started,
        attempt=spec.attempt,
        worker=env.worker_name,
    )


def _log_not_started(spec: TaskJob, start: Start) -> None:
    where = f"run {spec.run_id!r}, task {spec.task!r}, attempt {spec.attempt}"
    if start.outcome is StartOutcome.GONE:
        log.warning("%s: the run no longer exists; nothing to do", where)
    elif start.outcome is StartOutcome.DONE:
        log.info("%s: the task already succeeded; not running it again", where)
    elif start.outcome is StartOutcome.STALE:
        log.info("%s: token %s is not the current attempt; not running it", where, spec.token)
    elif start.outcome is StartOutcome.CANCELLED:
        log.info("%s: the run is being cancelled (%s); not running it", where, start.cancel_reason)


def _what(spec: TaskJob) -> str:
    return f"run '{spec.run_id}': result of task '{spec.task}'"
