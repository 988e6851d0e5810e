"""Runs in Redis: keys written by hand exactly as the coordinator writes them, and waiting on a run.

A worker test creates a run's meta hash (:func:`create_run`), the results its
tasks depend on (:func:`store_result`) and, for each attempt, its dispatch entry
and RQ job in one MULTI/EXEC (:func:`dispatch`); then it runs a worker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from rqdag.client import RunHandle
from rqdag.shared.model.codec import encode_result
from rqdag.shared.model.job import RUN_TASK, TaskJob
from rqdag.shared.model.result import TaskResult
from rqdag.shared.store.keys import RunKeys, job_id
from tests.support.wait import wait_until
from tests.support.workers import worker_queue


def create_run(
    conn: redis.Redis, run_id: str, params: Mapping[str, Any] | None = None, **meta: str
) -> RunKeys:
    """The run's meta hash, with its params as JSON."""
    keys = RunKeys(run_id)
    fields = {"params": json.dumps(dict(params or {})), "status": "running", **meta}
    conn.hset(keys.meta, mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping key is invariant
    return keys


def store_result(conn: redis.Redis, run_id: str, task: str, result: TaskResult) -> None:
    """A result in the run's results hash, as a finished attempt leaves it."""
    conn.hset(RunKeys(run_id).results, task, encode_result(result, what="test"))


def dispatch(
    conn: redis.Redis,
    run_id: str,
    task: str,
    func: str,
    *,
    attempt: int = 1,
    job_token: str | None = None,
    entry_token: str | None = None,
    queue: str = "default",
    **fields: Any,
) -> TaskJob:
    """The dispatch entry and the RQ job of one attempt, in one MULTI/EXEC.

    ``entry_token`` differs from ``job_token`` to model a job the coordinator gave up on.
    """
    token = job_token or uuid.uuid4().hex
    spec = TaskJob(run_id=run_id, task=task, token=token, attempt=attempt, func=func, **fields)
    jid = job_id(run_id, task, attempt)
    entry = {
        "attempt": attempt,
        "token": entry_token or token,
        "job_id": jid,
        "state": "queued",
        "queue": queue,
        "rq_queue": worker_queue(queue),
        "queued_at": time.time(),
    }
    # the capability queue of the worker tests' workers (see rqdag.coordinator.routing)
    rq_queue = Queue(worker_queue(queue), connection=conn, serializer=JSONSerializer)
    data = Queue.prepare_data(RUN_TASK, kwargs=spec.to_kwargs(), job_id=jid, timeout=-1, result_ttl=60)
    with conn.pipeline(transaction=True) as pipe:
        pipe.hset(RunKeys(run_id).dispatch, task, json.dumps(entry))
        rq_queue.enqueue_many([data], pipeline=pipe)
        pipe.execute()
    return spec


def wait_status(handle: RunHandle, statuses: Sequence[str], timeout: float = 30) -> None:
    """Wait until the run's status is one of ``statuses``."""
    wait_until(lambda: handle.status().status in statuses, timeout, f"run {handle.run_id} in {statuses}")
