"""The live workers, as RQ registers them, with the rqdag task each one is running.

RQ keeps every live worker in its registry (``Worker.all``): name, host, pid,
state, queues, heartbeat and its current job. An rqdag job's kwargs name the
run, task and attempt (:mod:`rqdag.shared.model.job`); they are read with RQ's JSON
serializer, the one rqdag workers use, and nothing is imported or run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import Worker

from rqdag.shared.model.job import RUN_TASK
from rqdag.shared.store.keys import served_queue


def _stamp(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def current_task(client: redis.Redis, job_id: str | None) -> dict[str, Any] | None:
    """The run, task, attempt and function of an rqdag job; None for no job or a foreign one."""
    if not job_id:
        return None
    try:
        job = Job.fetch(job_id, connection=client, serializer=JSONSerializer)
        if job.func_name != RUN_TASK:
            return None
        kwargs = job.kwargs
    except (NoSuchJobError, DeserializationError):  # gone, or not JSON: the worker shows without it
        return None
    return {
        "run_id": kwargs.get("run_id"),
        "task": kwargs.get("task"),
        "attempt": kwargs.get("attempt"),
        "func": kwargs.get("func"),
    }


def list_workers(client: redis.Redis) -> list[dict[str, Any]]:
    """Every live RQ worker, by name (the ``GET /api/workers`` items)."""
    out = []
    for worker in Worker.all(connection=client, serializer=JSONSerializer):
        job_id = worker.get_current_job_id()
        out.append(
            {
                "name": worker.name,
                "hostname": worker.hostname,
                "pid": worker.pid,
                "state": worker.get_state(),
                "queues": [served_queue(q) for q in worker.queue_names()],  # not the capability queues
                "current_job": job_id,
                "current_task": current_task(client, job_id),
                "birth": _stamp(worker.birth_date),
                "last_heartbeat": _stamp(worker.last_heartbeat),
                "successful_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
                "working_s": round(float(worker.total_working_time or 0.0), 3),
            }
        )
    return sorted(out, key=lambda w: str(w["name"]))
