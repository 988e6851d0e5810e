"""The coordinator writes its RQ jobs' fields itself: they must be what RQ's enqueue writes."""

from __future__ import annotations

import zlib

import redis
from redis.connection import Encoder
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from rqdag import Task
from rqdag.coordinator.dispatch import DispatchRequest
from rqdag.coordinator.rq_jobs import queued_job, rq_job_data
from rqdag.shared.store.keys import job_id

STAMPS = ("created_at", "enqueued_at")
ENCODER = Encoder("utf-8", "strict", decode_responses=False)


def _request() -> DispatchRequest:
    task = Task("load", "tests.integration.flows:step", queue="io")
    return DispatchRequest(run_id="r1", task=task, attempt=2, token="2-abc", inputs={}, params={"day": 1})


def _rq_fields(queue: Queue, request: DispatchRequest) -> dict[str, object]:
    """What RQ's own enqueue path writes for the same job (``enqueue_many`` -> ``create_job``,
    ``_prepare_for_queue``, ``to_dict``)."""
    data = rq_job_data(request, workflow="w", dispatched_at=1700000000.5)
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
    queue._prepare_for_queue(job)
    return dict(job.to_dict())


def test_a_dispatched_job_has_the_fields_rq_writes_for_it() -> None:
    queue = Queue("io", connection=redis.Redis(port=1), serializer=JSONSerializer)
    queue.redis_server_version = (7, 0, 0)  # no server needed: RQ asks it only for this
    request = _request()
    ours = queued_job(queue, rq_job_data(request, workflow="w", dispatched_at=1700000000.5))
    theirs = _rq_fields(queue, request)
    assert set(ours.fields) == set(theirs)
    for name in set(theirs) - {"data", *STAMPS}:  # as redis-py sends each value
        assert ENCODER.encode(ours.fields[name]) == ENCODER.encode(theirs[name]), name
    assert zlib.decompress(ours.fields["data"]) == zlib.decompress(theirs["data"])  # type: ignore[arg-type]
    assert ours.job_id == job_id("r1", "load", 2) and ours.key == Job.key_for(ours.job_id)
    assert ours.queue_key == queue.key
    for stamp in STAMPS:
        assert isinstance(ours.fields[stamp], str) and str(ours.fields[stamp]).endswith("Z")
