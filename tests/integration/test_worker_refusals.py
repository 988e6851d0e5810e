"""What an rqdag worker refuses to run, and where the refusals end up.

A Redis writer must not be able to make a worker call an arbitrary function:
any job that is not an rqdag task job is failed through RQ's own failure path
(into its FailedJobRegistry) without its function being imported or its data
being unpickled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from rqdag.errors import RqdagError
from rqdag.shared.model.task import TaskStatus
from rqdag.shared.store.keys import RunKeys, job_id
from rqdag.worker import run_task
from tests.support import REPO
from tests.support.runs import create_run, dispatch
from tests.support.workers import Env, path_of, worker_queue


class MakesDirectoryWhenUnpickled:
    """Unpickling this calls ``os.mkdir(path)``: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (self.path,)


def failed_reason(conn: redis.Redis, queue: str, jid: str) -> str:
    """The exception text RQ stored for a job in its FailedJobRegistry."""
    assert jid in FailedJobRegistry(queue, connection=conn).get_job_ids()
    result = Job.fetch(jid, connection=conn, serializer=JSONSerializer).latest_result()
    assert result is not None
    return str(result.exc_string)


@pytest.mark.parametrize("worker_class", ["simple", "fork"])
def test_plain_rq_jobs_are_refused_and_never_run(env: Env, tmp_path: Path, worker_class: str) -> None:
    queue = Queue(worker_queue(), connection=env.conn, serializer=JSONSerializer)
    mkdir_job = queue.enqueue_call("os.mkdir", args=[str(tmp_path / "by-os-mkdir")])
    marker_job = queue.enqueue_call(
        f"{path_of('write_marker').replace(':', '.')}", args=[str(tmp_path / "m")]
    )
    pickled = Queue(worker_queue(), connection=env.conn).enqueue_call(
        "os.getpid", args=[MakesDirectoryWhenUnpickled(str(tmp_path / "by-unpickling"))]
    )
    create_run(env.conn, "r1")
    dispatch(env.conn, "r1", "after", path_of("echo"))  # the worker goes on after refusing

    env.run_worker(worker_class=worker_class)

    assert "refused to run 'os.mkdir'" in failed_reason(env.conn, worker_queue(), mkdir_job.id)
    assert "refused to run 'tests.integration.worker_tasks.write_marker'" in failed_reason(
        env.conn, worker_queue(), marker_job.id
    )
    assert "its data is not an RQ job in JSON" in failed_reason(env.conn, worker_queue(), pickled.id)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.jsonl"]
    result = env.result("r1", "after")
    assert result is not None and result.status == TaskStatus.SUCCESS


def test_a_malformed_task_job_is_failed_by_rq(env: Env) -> None:
    create_run(env.conn, "r2")
    queue = Queue(worker_queue(), connection=env.conn, serializer=JSONSerializer)
    job = queue.enqueue_call(
        "rqdag.worker.job.run_task",
        kwargs={"run_id": "r2", "task": "t", "attempt": 1, "func": path_of("echo")},
        timeout=-1,
    )

    env.run_worker()

    assert "field 'token' must be a non-empty string" in failed_reason(env.conn, worker_queue(), job.id)
    assert env.ledger_lines() == []


def test_a_plain_rq_worker_does_not_run_task_jobs(env: Env) -> None:
    create_run(env.conn, "r3")
    dispatch(env.conn, "r3", "t", path_of("echo"))
    command = [str(Path(sys.executable).parent / "rq"), "worker", "--burst", "--url", env.url, "-S", "json"]
    command.append(worker_queue())  # where the coordinator routes the job (its capability queue)

    proc = subprocess.run(command, env=env.environ(), cwd=REPO, capture_output=True, text=True, timeout=30)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    reason = failed_reason(env.conn, worker_queue(), job_id("r3", "t", 1))
    assert "rqdag task jobs run only inside an rqdag worker" in reason
    assert env.ledger_lines() == []
    assert env.conn.hlen(RunKeys("r3").results) == 0


def test_run_task_outside_a_worker_raises() -> None:
    with pytest.raises(RqdagError, match="only inside an rqdag worker"):
        run_task(run_id="r", task="t", token="x", attempt=1, func=path_of("echo"))


def test_a_broken_tasks_module_stops_the_worker_at_start(env: Env) -> None:
    proc = subprocess.run(
        env.worker_command(tasks=["tests.integration.no_such_module"]),
        env=env.environ(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "--tasks module 'tests.integration.no_such_module' cannot be imported" in proc.stderr
