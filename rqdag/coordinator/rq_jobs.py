"""The RQ job of one attempt: what the coordinator enqueues, and how long RQ keeps it."""

from __future__ import annotations

from rq import Queue
from rq.job import JobStatus
from rq.queue import EnqueueData

from rqdag.coordinator.dispatch import DispatchRequest
from rqdag.shared.model.job import RUN_TASK, TaskJob
from rqdag.shared.store.keys import job_id
from rqdag.shared.store.scripts import QueuedJob

RQ_RESULT_TTL_S = 60
RQ_FAILURE_TTL_S = 7 * 24 * 3600


def rq_job_data(
    request: DispatchRequest,
    *,
    workflow: str | None = None,
    traceparent: str | None = None,
    dispatched_at: float | None = None,
) -> EnqueueData:
    """The RQ job of one attempt: :data:`RUN_TASK` with the :class:`TaskJob` as its JSON kwargs."""
    job = TaskJob.of_task(
        request.run_id,
        request.task,
        attempt=request.attempt,
        token=request.token,
        failures=request.failures,
        workflow=workflow,
        dispatched_at=dispatched_at,
        traceparent=traceparent,
        item=request.item,
        mapped_inputs=request.mapped_inputs,
        lazy_inputs=request.lazy_inputs,
    )
    return Queue.prepare_data(
        RUN_TASK,
        kwargs=job.to_kwargs(),
        job_id=job_id(job.run_id, job.task, job.attempt),
        timeout=-1,
        result_ttl=RQ_RESULT_TTL_S,
        failure_ttl=RQ_FAILURE_TTL_S,
        description=job.description,
    )


def queued_job(queue: Queue, data: EnqueueData) -> QueuedJob:
    """The job ``data`` as RQ's ``enqueue_many`` writes it on ``queue``: RQ builds the fields,
    the dispatch script writes them (with the attempts' entries, under the lease)."""
    job = queue.create_job(
        data.func,
        args=data.args,
        kwargs=data.kwargs,
        timeout=data.timeout,
        result_ttl=data.result_ttl,
        ttl=data.ttl,
        failure_ttl=data.failure_ttl,
        description=data.description,
        job_id=data.job_id,
        meta=data.meta,
        status=JobStatus.QUEUED,
    )
    queue._prepare_for_queue(job)  # origin, enqueued_at, timeout and status, as enqueue sets them
    return QueuedJob(job.id, job.key, queue.key, job.to_dict())
