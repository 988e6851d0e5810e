"""Taking jobs in batches: as many as a concurrent worker has free slots, in three round trips.

RQ takes one job per round trip (``BLMOVE`` from the queue into its
intermediate list), then fetches it (``HGETALL``) and records its execution (a
MULTI/EXEC): with the worker's own bookkeeping, about eight round trips on the
main thread for each job, and with tens of slots waiting on the GIL each round
trip costs more. Here one script run (``take_jobs``) moves up to ``count`` ids,
one pipeline fetches their jobs and one script run (``start_jobs``) does for
all of them what RQ does for one before it runs it: its execution record (the
StartedJobRegistry entry ``rq info`` reads, the worker's execution index), the
job's ``started`` status and heartbeat, its removal from the intermediate list,
and the worker's busy state.

A job is never lost in between: until that script run it sits in the queue's
intermediate list (where RQ's cleanup and rqdag's watchdog look for a job a
worker took and died with), and after it in the StartedJobRegistry with a
heartbeat that lapses when the worker is gone, as any job RQ started. Either
way rqdag's own start step has not run, so the coordinator dispatches the task
again, at-most-once or not. Only as many jobs are taken as slots are free: each
starts at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import uuid4

import redis
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import current_timestamp, now, utcformat
from rq.worker import WorkerStatus
from rq.worker.base import BaseWorker

from rqdag.shared.store.scripts import RqStart, Scripts
from rqdag.worker.rq_finish import rq_worker

log = logging.getLogger("rqdag.worker")


@dataclass(frozen=True)
class Taken:
    """A job taken from its queue, with the execution recorded for it (None if Redis refused it:
    then nothing of RQ's start was written, and the slot's own ``prepare_job_execution`` does it)."""

    job: Job
    queue: Queue
    execution: Execution | None


def take_batch(worker: BaseWorker, queue: Queue, count: int) -> list[Taken]:
    """Up to ``count`` jobs from ``queue`` (without blocking), their executions recorded."""
    ids = _move_ids(worker, queue, count)
    if not ids:
        return []
    jobs = _fetch(worker, queue, ids)
    executions = _record_executions(worker, queue, jobs) if jobs else {}
    return [Taken(job, queue, executions.get(job.id)) for job in jobs]


def _move_ids(worker: BaseWorker, queue: Queue, count: int) -> list[str]:
    """Move up to ``count`` ids into the queue's intermediate list, as RQ's own dequeue does
    (``take_jobs``: one script run)."""
    return _scripts(worker).take_jobs(
        queue_key=queue.key, intermediate_key=queue.intermediate_queue_key, count=count
    )


def _fetch(worker: BaseWorker, queue: Queue, ids: list[str]) -> list[Job]:
    """The jobs of ``ids`` (one pipeline); a job whose hash is gone is skipped, as RQ skips it."""
    job_class = worker.job_class
    with worker.connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hgetall(job_class.key_for(job_id))
        datas = pipe.execute()
    version = worker.get_redis_server_version()  # type: ignore[no-untyped-call]
    jobs: list[Job] = []
    for job_id, data in zip(ids, datas, strict=True):
        if not data:
            queue.intermediate_queue.remove(job_id)  # RQ's cleanup would drop it later
            continue
        job = job_class(job_id, connection=worker.connection, serializer=worker.serializer)
        try:
            job.restore(data)
        except Exception as exc:  # left in the intermediate list: RQ's cleanup fails it
            log.error("worker %s: job %s: not readable (%s); left to RQ's cleanup", worker.name, job_id, exc)
            continue
        job.redis_server_version = version
        worker.log.info("Worker %s: %s: %s", worker.name, queue.name, job_id)
        jobs.append(job)
    return jobs


def _record_executions(worker: BaseWorker, queue: Queue, jobs: list[Job]) -> dict[str, Execution]:
    """RQ's ``prepare_execution`` and ``prepare_job_execution`` for every job, in one script run
    (``start_jobs``; nothing if Redis refuses it)."""
    stamp = now()
    base = current_timestamp()
    executions: dict[str, Execution] = {}
    starts: list[RqStart] = []
    for job in jobs:
        ttl = worker.get_heartbeat_ttl(job)
        execution = Execution(uuid4().hex, job.id, connection=worker.connection, worker_name=worker.name)
        execution.created_at = execution.last_heartbeat = stamp
        execution._job = job
        executions[job.id] = execution
        starts.append(_rq_start(job, execution, ttl, base))
    text = utcformat(stamp)
    try:
        _scripts(worker).start_jobs(
            starts,
            worker=rq_worker(worker.name),
            intermediate_key=queue.intermediate_queue_key,
            started_key=queue.started_job_registry.key,
            now=stamp.timestamp(),
            now_text=text,
            worker_ttl=max(s.ttl for s in starts),
        )
    except redis.ResponseError as exc:  # a full Redis: each job's own preparation tries again
        log.debug("worker %s: executions not recorded in a batch (%s)", worker.name, exc)
        return {}
    for job in jobs:  # what RQ's own preparation sets on the objects
        job.worker_name, job.last_heartbeat, job.started_at = worker.name, stamp, stamp
        job._status = JobStatus.STARTED
    worker._state = WorkerStatus.BUSY
    worker.last_heartbeat = stamp
    for execution in executions.values():
        worker.executions[execution.id] = execution
    return executions


def _rq_start(job: Job, execution: Execution, ttl: int, base: int) -> RqStart:
    """RQ's start of one job, as ``start_jobs`` takes it (RQ's registries score by its clock)."""
    return RqStart(
        job_key=job.key,
        execution_key=execution.key,
        job_executions_key=ExecutionRegistry(job_id=job.id, connection=job.connection).key,
        job_id=job.id,
        execution_id=execution.id,
        execution_member=execution.composite_key,
        ttl=ttl,
        started_score=base + ttl,
        executions_score=base + ttl + 60,
    )


def _scripts(worker: BaseWorker) -> Scripts:
    """The scripts of an rqdag worker's environment."""
    environment = getattr(worker, "rqdag_environment", None)
    if environment is None:
        raise TypeError(f"worker {worker.name}: not an rqdag worker")
    scripts: Scripts = environment().scripts
    return scripts


def give_back(worker: BaseWorker, taken: list[Taken]) -> None:
    """Put jobs taken but never started back at the head of their queues (a stopping worker).

    In one MULTI/EXEC: each job is ``queued`` again at the front of its queue,
    out of the intermediate list, its execution record out of the StartedJobRegistry.
    """
    if not taken:
        return
    with worker.connection.pipeline() as pipe:
        for item in reversed(taken):  # LPUSH one by one: the first taken ends up first again
            pipe.lrem(item.queue.intermediate_queue_key, 1, item.job.id)
            pipe.lpush(item.queue.key, item.job.id)
            pipe.hset(item.job.key, "status", JobStatus.QUEUED.value)
            if item.execution is not None:
                item.execution.delete(item.job, pipe)
                worker.executions.pop(item.execution.id, None)
        pipe.execute()
    log.info("worker %s: %d job(s) taken but not started put back in their queue", worker.name, len(taken))
