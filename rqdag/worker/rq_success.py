"""RQ's bookkeeping of an rqdag job that completed, in one MULTI/EXEC instead of four round trips.

Stock RQ ends a successful job with a job heartbeat (a round trip of its own),
then ``WATCH`` on the job's dependents key, ``SMEMBERS`` of it and the
transaction that writes the result, the registries and the worker's counters.
An rqdag job has no RQ dependents (the coordinator never uses RQ's
``depends_on``), no callbacks, repeats or rate limit: its bookkeeping is the same
writes, sent at once (and the job's hash is not written anew whole: only the
fields a run changed). Any other job keeps RQ's own path.
"""

from __future__ import annotations

from typing import Any

from redis.client import Pipeline
from redis.typing import EncodableT
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.results import Result
from rq.utils import now, utcformat
from rq.worker.base import BaseWorker

from rqdag.worker import rq_finish


def _is_plain(job: Job, return_value: Any) -> bool:
    """An rqdag job with nothing RQ must do beyond its writes (what the lean path assumes)."""
    return isinstance(return_value, str) and rq_finish.plain_job(job)


def _record_success(job: Job, execution: Execution, result_ttl: int, worker: str, pipe: Pipeline) -> None:
    """RQ's ``Job._handle_success``, writing only the job's fields that changed.

    RQ saves the whole job hash again (its data compressed anew); after a run
    only its status and times differ from what is stored.
    """
    ended = utcformat(job.ended_at)  # type: ignore[arg-type]
    fields: dict[EncodableT, EncodableT] = {"status": JobStatus.FINISHED.value, "ended_at": ended}
    if job.started_at is not None:
        fields["started_at"] = utcformat(job.started_at)
    pipe.hset(job.key, mapping=fields)
    Result.create(
        job,
        Result.Type.SUCCESSFUL,
        return_value=job._result,
        ttl=result_ttl,
        worker_name=worker,
        pipeline=pipe,
        execution_id=execution.id,
        execution_started_at=execution.created_at,
        execution_ended_at=job.ended_at,
    )
    job.finished_job_registry.add(job, result_ttl, pipe)


class LeanSuccess(BaseWorker):
    """A worker whose rqdag jobs are marked finished in one MULTI/EXEC."""

    def _finalize_success(self, job: Job, queue: Queue, execution: Execution, return_value: Any) -> None:
        """RQ's success path, with its writes in one transaction for a plain rqdag job (none when
        its finish step wrote them already, see :mod:`.rq_finish`)."""
        pending = rq_finish.recorded(job)
        if pending is not None:
            job.ended_at = pending.ended_at
            job._result = return_value
            job._status = JobStatus.FINISHED
            self.executions.pop(execution.id, None)
            self.log.info("Worker %s: %s: Job OK (%s)", self.name, job.origin, job.id)
            return
        if not _is_plain(job, return_value):
            super()._finalize_success(job, queue, execution, return_value)
            return
        job.ended_at = now()
        job._result = return_value
        job._status = JobStatus.FINISHED
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline() as pipe:
            job.heartbeat(now(), job.success_callback_timeout, pipeline=pipe)
            self.increment_successful_job_count(pipeline=pipe)
            self.increment_total_working_time(job.ended_at - job.started_at, pipe)  # type: ignore[operator]
            if result_ttl != 0:
                _record_success(job, execution, result_ttl, self.name, pipe)
            job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            pipe.execute()
        self.log.info("Worker %s: %s: Job OK (%s)", self.name, job.origin, job.id)
