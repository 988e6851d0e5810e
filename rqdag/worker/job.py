"""The job function of every rqdag task: start, build the TaskContext, call, finish.

:func:`run_task` is the only function an rqdag worker runs. One attempt is:

1. **start** (one script, one round trip): claim the attempt and read the run's
   params and the dependencies' results; a run that is gone, a task that already
   succeeded, a token that is not current or a run being cancelled: return
   without running anything;
2. look the job's function (and condition) up in the worker's registry: a path
   that is not registered is never imported, it ends in a final failure;
3. call the task under its ``timeout_s`` (:mod:`.calling`);
4. cap the result's size, then **finish** (one script): the result is written
   when it is final, kept in the dispatch entry when a retry follows, and refused
   when the token is no longer current.

A heartbeat runs from the start step's answer to the finish step's. Both steps
are sent again while Redis is unreachable (:mod:`.retrying`): a finished result
is held until Redis writes or refuses it, never dropped. A failure is final when
the task's retries are used up (its ``failures`` so far, from the job), or when
its exception is not one its ``Retry(on=...)`` lists.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rqdag.errors import DecodeError, TaskNotAllowedError, WorkflowDefinitionError
from rqdag.shared import metrics, traces
from rqdag.shared.model.context import TaskContext, idempotency_key
from rqdag.shared.model.job import TaskJob
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.retry import Retry
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts import FinishOutcome, Start, StartOutcome
from rqdag.worker import rq_finish, rq_outcome
from rqdag.worker.calling import call_task, own_failure
from rqdag.worker.combine import SlotSteps
from rqdag.worker.environment import WorkerEnvironment, current_environment
from rqdag.worker.heartbeat import Heartbeat
from rqdag.worker.inputs import eager_dependencies, with_lazy
from rqdag.worker.payload import decode_inputs, decode_params, encode_capped, read_input
from rqdag.worker.retrying import until_answered

log = logging.getLogger("rqdag.worker")

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
    start = _start(env, spec, keys)
    if start.outcome is not StartOutcome.OK:
        _log_not_started(spec, start)
        return rq_outcome.not_started(spec, start)
    metrics.task_started(spec.workflow, spec.task, spec.dispatched_at)
    env.current.set(spec.run_id, spec.task, spec.token)
    cancelled = threading.Event()
    heartbeat = Heartbeat(
        env.scripts, keys, spec.task, spec.token, env.heartbeat_interval, cancelled, env.ticker, env.beats
    )
    try:
        with heartbeat:
            result, final = _attempt(env, spec, start.params, start.inputs, cancelled)
            result, encoded = encode_capped(spec, result, env.max_result_bytes)
            heartbeat.finishing()
            outcome = _finish(env, spec, keys, result, encoded, final)
        return rq_outcome.after_finish(spec, outcome, result)  # after the finish: RQ's view of it
    finally:
        env.current.clear()


def _start(env: WorkerEnvironment, spec: TaskJob, keys: RunKeys) -> Start:
    """The start step, sent until Redis answers; ``claim`` tells a replay of it from another start."""
    claim = uuid.uuid4().hex
    now = time.time()
    call = env.scripts.start_task.request(
        keys,
        task=spec.task,
        token=spec.token,
        worker=env.worker_name,
        claim=claim,
        now=now,
        heartbeat_timeout_s=env.heartbeat_timeout_s,
        depends_on=eager_dependencies(spec),
    )
    steps = env.steps
    return until_answered(
        (lambda: steps.starts.call(call))
        if steps is not None
        else lambda: env.scripts.start_task.parse(env.scripts.start_task.send(call)),
        what=f"run {spec.run_id!r}, task {spec.task!r}, attempt {spec.attempt}: start",
        extra=_extra(spec),
        give_up=env.stopping.is_set,  # nothing is held yet: a stopping worker need not wait
    )


def _attempt(
    env: WorkerEnvironment,
    spec: TaskJob,
    raw_params: bytes,
    raw_deps: Sequence[bytes | None],
    cancelled: threading.Event,
) -> tuple[TaskResult, bool]:
    """The attempt's result, and whether it is final whatever the retries left."""
    try:
        func = env.registry.lookup(spec.func)
        condition = env.registry.lookup(spec.condition) if spec.condition else None
        retry = Retry(on=spec.retry_on)
    except (TaskNotAllowedError, WorkflowDefinitionError) as exc:
        log.error("run %r, task %r: %s", spec.run_id, spec.task, exc)
        return own_failure(env, spec, str(exc)), True
    try:
        params = decode_params(spec, raw_params)
        inputs = with_lazy(spec, decode_inputs(spec, raw_deps), lambda dep: read_input(env, spec, dep))
    except DecodeError as exc:
        log.error("%s", exc)
        return own_failure(env, spec, str(exc)), True
    ctx = TaskContext(
        run_id=spec.run_id,
        task=spec.task,
        attempt=spec.attempt,
        params=params,
        inputs=inputs,
        context=None,
        idempotency_key=idempotency_key(spec.run_id, spec.task),
        item=spec.item,
        cancelled=cancelled,
    )
    with env.logs.capture(spec.run_id, spec.task, spec.attempt):
        attempt = call_task(env, spec, func, condition, ctx, retry)
    return attempt.result, not attempt.retryable


def _finish(
    env: WorkerEnvironment, spec: TaskJob, keys: RunKeys, result: TaskResult, encoded: bytes, final: bool
) -> str:
    """Write the result (sent until Redis writes or refuses it); the attempt's outcome word."""
    final = final or result.status is not TaskStatus.FAILURE or spec.failures >= spec.retries
    steps = env.steps
    if steps is not None:
        outcome = _finish_in_slot(env, steps, spec, keys, result, encoded, final)
    else:
        call = env.scripts.finish_task.request(
            keys,
            task=spec.task,
            token=spec.token,
            result=encoded,
            status=result.status.value,
            final=final,
            now=time.time(),
            inline=len(encoded) <= INLINE_RESULT_BYTES,
        )
        outcome = until_answered(
            lambda: env.scripts.finish_task.parse(env.scripts.finish_task.send(call)),
            what=f"run {spec.run_id!r}, task {spec.task!r}, attempt {spec.attempt}: finish",
            extra=_extra(spec),
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


def _finish_in_slot(
    env: WorkerEnvironment,
    steps: SlotSteps,
    spec: TaskJob,
    keys: RunKeys,
    result: TaskResult,
    encoded: bytes,
    final: bool,
) -> FinishOutcome:
    """A slot's finish, combined with the slots' that meet it, RQ's success bookkeeping riding
    along when the job completes (the job function then returns the status word to RQ)."""
    pending = rq_finish.pending_success()
    completes = pending is not None and rq_outcome.completes(result)
    call = env.scripts.finish_jobs.request(
        keys,
        task=spec.task,
        token=spec.token,
        result=encoded,
        status=result.status.value,
        final=final,
        now=time.time(),
        inline=len(encoded) <= INLINE_RESULT_BYTES,
        rq=pending.part(result.status.value) if pending is not None and completes else None,
    )
    outcome = until_answered(
        lambda: steps.finishes.call(call),
        what=f"run {spec.run_id!r}, task {spec.task!r}, attempt {spec.attempt}: finish",
        extra=_extra(spec),
    )
    if pending is not None and call.with_rq and outcome is FinishOutcome.WRITTEN:
        pending.recorded = True
    return outcome


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


def _extra(spec: TaskJob) -> dict[str, Any]:
    """The fields that name the attempt in every log line about it (the JSON log format shows them)."""
    return {"run_id": spec.run_id, "task": spec.task, "attempt": spec.attempt}
