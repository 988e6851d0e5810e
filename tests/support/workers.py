"""Burst rqdag workers on the worker tests' task module, and what they leave in Redis.

The worker tests write an attempt by hand (:mod:`tests.support.runs`), run a
worker to the end with :meth:`Env.run_worker`, and read back what it wrote.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from rqdag.shared.model.codec import decode_result
from rqdag.shared.model.job import TaskJob
from rqdag.shared.model.result import TaskResult
from rqdag.shared.store.keys import RunKeys, capability_queue, job_id
from rqdag.shared.store.workers import WorkerInfo, WorkerRegistration, profile_of
from rqdag.worker.registry import build_registry
from tests.support import REPO
from tests.support.ledger import read_ledger
from tests.support.processes import rqdag_env

TASKS = "tests.integration.worker_tasks"

_START_WORKER = (
    "import json, sys\n"
    "from rqdag.worker import start_worker\n"
    "start_worker(sys.argv[1], **json.loads(sys.argv[2]))\n"
)


@functools.cache
def worker_queue(queue: str = "default", tasks: tuple[str, ...] = (TASKS,)) -> str:
    """The RQ queue a worker with these ``--tasks`` listens to for ``queue`` (its capability queue)."""
    return capability_queue(queue, profile_of(build_registry(tasks).functions))


def register_stand_in(
    conn: redis.Redis, tasks: tuple[str, ...], *, name: str = "stand-in", queue: str = "default"
) -> str:
    """Publish a registry entry for a worker with these ``--tasks`` that is not running (60 s TTL).

    The coordinator then routes those tasks' jobs to that worker's capability
    queue (returned), where a test can leave them, take them by hand, or let a
    real worker with the same ``--tasks`` find them later.
    """
    functions = tuple(sorted(build_registry(tasks).functions))
    profile = profile_of(functions)
    rq_queue = capability_queue(queue, profile)
    info = WorkerInfo(
        name,
        "test",
        0,
        (queue,),
        (rq_queue,),
        "simple",
        tasks,
        profile,
        "test",
        "3",
        time.time(),
        60.0,
        functions,
    )
    WorkerRegistration(conn, info).publish()
    return rq_queue


def path_of(name: str) -> str:
    """Import path of a function of the worker tests' task module."""
    return f"{TASKS}:{name}"


@dataclass
class Env:
    """A test's Redis, ledger file and worker environment variables."""

    url: str
    conn: redis.Redis
    ledger: Path

    def environ(self) -> dict[str, str]:
        """The environment of a worker process: the repo importable, the ledger named."""
        return rqdag_env(self.ledger)

    def worker_command(self, **options: Any) -> list[str]:
        """``start_worker(url, **options)`` in a new interpreter (burst, the test tasks, 0.2 s heartbeats)."""
        options = {"tasks": [TASKS], "burst": True, "heartbeat_interval": 0.2, **options}
        return [sys.executable, "-c", _START_WORKER, self.url, json.dumps(options)]

    def run_worker(self, **options: Any) -> subprocess.CompletedProcess[str]:
        """Run a burst worker to the end; fail the test if it did not exit cleanly."""
        proc = subprocess.run(
            self.worker_command(**options),
            env=self.environ(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def ledger_lines(self, kind: str = "task") -> list[dict[str, Any]]:
        """The ledger lines of one kind (``task`` or ``context``)."""
        return [line for line in read_ledger(self.ledger) if line["kind"] == kind]

    def result(self, run_id: str, task: str) -> TaskResult | None:
        """The task's recorded result, if any."""
        raw = self.conn.hget(RunKeys(run_id).results, task)
        return None if raw is None else decode_result(raw, what="test")

    def entry(self, run_id: str, task: str) -> dict[str, Any] | None:
        """The task's dispatch entry, if any."""
        raw = self.conn.hget(RunKeys(run_id).dispatch, task)
        return None if raw is None else json.loads(raw)

    def events(self, run_id: str) -> list[dict[str, str]]:
        """The run's event stream, decoded."""
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], self.conn.xrange(RunKeys(run_id).events))
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

    def job_return(self, spec: TaskJob) -> Any:
        """What the attempt's RQ job returned."""
        job = Job.fetch(job_id(spec.run_id, spec.task, spec.attempt), self.conn, serializer=JSONSerializer)
        return job.return_value()

    def rq_failure(self, spec: TaskJob) -> tuple[str, str] | None:
        """The attempt's RQ job status and failure text when RQ holds it as failed, else None."""
        jid = job_id(spec.run_id, spec.task, spec.attempt)
        job = Job.fetch(jid, self.conn, serializer=JSONSerializer)
        if jid not in FailedJobRegistry(job.origin, connection=self.conn).get_job_ids():
            return None
        result = job.latest_result()
        return job.get_status().value, result.exc_string if result is not None else ""
