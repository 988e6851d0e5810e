"""RQ's success bookkeeping of a slot's job, sent with rqdag's finish step in one script.

A concurrent worker's slot performs a plain rqdag job (see :func:`plain_job`)
with a :class:`PendingSuccess` current (:func:`awaiting_success`). Its finish
step then carries RQ's part (``finish_jobs``): when rqdag's result is written,
RQ's job is marked finished in the same script run (the job hash, the result
stream, the finished registry, the execution out of the started registry, the
worker's counters), and RQ's own success path, called after the job function
returns, writes nothing more (:meth:`recorded`). A result refused, a failure or
a cancellation keep RQ's own failure path. Keys and words come from RQ's own API.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE, Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.utils import current_timestamp, now, utcformat
from rq.worker.base import BaseWorker, WorkerStatus

from rqdag.shared.model.job import RUN_TASK
from rqdag.shared.store.scripts import RqSuccess, RqWorker

_PENDING: ContextVar[PendingSuccess | None] = ContextVar("rqdag_pending_success", default=None)


def rq_worker(name: str) -> RqWorker:
    """The worker's part of ``finish_jobs``: its RQ keys and RQ's words."""
    return RqWorker(
        worker_key=BaseWorker.redis_worker_namespace_prefix + name,
        worker_executions_key=WORKER_EXECUTIONS_KEY_TEMPLATE.format(name),
        worker=name,
        rq_finished=JobStatus.FINISHED.value,
        rq_successful=str(Result.Type.SUCCESSFUL.value),
        rq_started=JobStatus.STARTED.value,
        rq_busy=WorkerStatus.BUSY.value,
    )


_REGISTRY_KEYS: dict[str, tuple[str, str]] = {}


def _registry_keys(queue: Queue) -> tuple[str, str]:
    """The finished and started registry keys of ``queue`` (built once per queue)."""
    keys = _REGISTRY_KEYS.get(queue.key)
    if keys is None:
        keys = FinishedJobRegistry(queue=queue).key, StartedJobRegistry(queue=queue).key
        _REGISTRY_KEYS[queue.key] = keys
    return keys


def plain_job(job: Job) -> bool:
    """An rqdag job with nothing RQ must do on success beyond its writes (no callback, repeat,
    rate limit or webhook)."""
    return (
        job.func_name == RUN_TASK
        and job.success_callback is None
        and not job.repeats_left
        and not job.has_rate_limit
        and not job.webhooks
    )


_ENCODED: dict[tuple[object, str], str] = {}


def _encoded(job: Job, return_value: str) -> str:
    """RQ's encoded form of a return value (the job's serializer, base64), kept per word: a
    job function returns one of a few status words."""
    key = (job.serializer, return_value)
    encoded = _ENCODED.get(key)
    if encoded is None:
        encoded = b64encode(job.serializer.dumps(return_value)).decode()
        if len(_ENCODED) < 64:
            _ENCODED[key] = encoded
    return encoded


def _readable_and_plain(job: Job) -> bool:
    """:func:`plain_job`, and False for a job whose data does not read (RQ's own path fails it)."""
    try:
        return plain_job(job)
    except Exception:  # RQ reads the job again where it performs it, and fails it there
        return False


class PendingSuccess:
    """RQ's success bookkeeping one slot's job may need, built when its finish is sent."""

    def __init__(self, job: Job, queue: Queue, execution: Execution, result_ttl: int) -> None:
        """``result_ttl``: how long RQ keeps the job and its result (> 0)."""
        self.job = job
        self.queue = queue
        self.execution = execution
        self.result_ttl = result_ttl
        self.ended_at: datetime | None = None
        self.recorded = False  # set once a finish with RQ's part was written

    def part(self, return_value: str) -> RqSuccess:
        """RQ's writes for the job ending now with ``return_value`` (what the job function returns)."""
        job, execution = self.job, self.execution
        ended = now()
        self.ended_at = ended
        started = job.started_at or ended
        finished_key, started_key = _registry_keys(self.queue)
        return RqSuccess(
            job_key=job.key,
            job_results_key=Result.get_key(job.id),  # type: ignore[no-untyped-call]
            finished_key=finished_key,
            started_key=started_key,
            execution_key=execution.key,
            job_executions_key=ExecutionRegistry(job_id=job.id, connection=job.connection).key,
            dependents_key=job.dependents_key,
            dependencies_key=job.dependencies_key,
            job_id=job.id,
            execution_id=execution.id,
            execution_member=execution.composite_key,
            started_at=utcformat(started),
            ended_at=utcformat(ended),
            working_time=(ended - started).total_seconds(),
            return_value=_encoded(job, return_value),
            execution_started_at=execution.created_at.timestamp(),
            execution_ended_at=ended.timestamp(),
            result_ttl=self.result_ttl,
            finished_score=current_timestamp() + self.result_ttl,
        )


def pending_success() -> PendingSuccess | None:
    """The RQ bookkeeping the job being performed in this thread may send with its finish."""
    return _PENDING.get()


@contextmanager
def awaiting_success(worker: BaseWorker, job: Job, queue: Queue, execution: Execution) -> Iterator[None]:
    """Inside the block, a plain rqdag job's finish may carry RQ's success bookkeeping."""
    ttl = job.get_result_ttl(worker.default_result_ttl)
    if ttl <= 0 or not _readable_and_plain(job):  # RQ deletes the job or keeps it forever: its own path
        yield
        return
    token = _PENDING.set(PendingSuccess(job, queue, execution, ttl))
    try:
        yield
    finally:
        _PENDING.reset(token)


def recorded(job: Job) -> PendingSuccess | None:
    """The pending success of ``job`` if its finish already wrote RQ's part, else None."""
    pending = _PENDING.get()
    if pending is None or pending.job is not job or not pending.recorded:
        return None
    return pending
