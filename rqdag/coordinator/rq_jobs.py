"""The RQ job of one attempt: what the coordinator enqueues, and how long RQ keeps it."""

from __future__ import annotations

import zlib

from redis.typing import EncodableT
from rq import Queue
from rq.job import Job, JobStatus
from rq.queue import EnqueueData
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat

from rqdag.coordinator.dispatch import DispatchRequest
from rqdag.coordinator.routing import Route
from rqdag.shared.model.job import RUN_TASK, TaskJob
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.keys import job_id
from rqdag.shared.store.records import DispatchEntry
from rqdag.shared.store.scripts import QueuedJob

RQ_RESULT_TTL_S = 60
RQ_FAILURE_TTL_S = 7 * 24 * 3600


def rq_job_data(
    request: DispatchRequest,
    *,
    workflow: str | None = None,
    traceparent: str | None = None,
    dispatched_at: float | None = None,
    definition_hash: str | None = None,
) -> EnqueueData:
    """The RQ job of one attempt: :data:`RUN_TASK` with the :class:`TaskJob` as its JSON kwargs
    (``definition_hash``: the task's, if the caller knows it already)."""
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
        definition_hash=definition_hash,
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
    """The job ``data`` (of :func:`rq_job_data`) as RQ's ``enqueue_many`` writes it on ``queue``.

    Built here, without RQ's Job object (half of a dispatch's CPU): the fields of a
    job with no meta, callbacks, retries, dependencies or group, in RQ's format
    (``tests/unit/test_rq_job_fields.py`` holds them against RQ's own ``to_dict()``).
    """
    stamp = utcformat(now())
    payload = (data.func, None, list(data.args or ()), dict(data.kwargs or {}))
    fields: dict[str, EncodableT] = {
        "created_at": stamp,
        "data": zlib.compress(JSONSerializer.dumps(payload)),  # type: ignore[no-untyped-call]
        "success_callback_name": "",
        "failure_callback_name": "",
        "stopped_callback_name": "",
        "started_at": "",
        "ended_at": "",
        "last_heartbeat": "",
        "worker_name": "",
        "group_id": "",
        "origin": queue.name,
        "description": data.description or "",
        "enqueued_at": stamp,
        "timeout": data.timeout if data.timeout is not None else -1,
        "result_ttl": data.result_ttl if data.result_ttl is not None else RQ_RESULT_TTL_S,
        "failure_ttl": data.failure_ttl if data.failure_ttl is not None else RQ_FAILURE_TTL_S,
        "status": JobStatus.QUEUED.value,
    }
    rq_id = str(data.job_id)
    return QueuedJob(rq_id, Job.key_for(rq_id), queue.key, fields)


def queued_entry(request: DispatchRequest, rq_job_id: str, route: Route, now: float) -> DispatchEntry:
    """The dispatch entry of an attempt sent (or held: ``route`` says) at ``now``."""
    return DispatchEntry(
        attempt=request.attempt,
        token=request.token,
        job_id=rq_job_id,
        state=AttemptState.QUEUED,
        queue=request.task.queue,
        queued_at=now,
        rq_queue=route.rq_queue,
        waiting=route.waiting,
        failures=request.failures,
        retry_of=request.retry_of,
    )
