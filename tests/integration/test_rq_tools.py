"""RQ's own tools tell the truth about rqdag jobs: ``rq info``, RQ's registries, RQ's worker API.

A failed task is a failed RQ job (in RQ's FailedJobRegistry, with the task's
message, never retried by RQ) while rqdag's result stays the authority, written
exactly once; a success is a finished one; the worker logs neither a failure
nor a refusal as "Successfully completed".
"""

from __future__ import annotations

import subprocess
import sys

from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer

from rqdag.shared.model.task import TaskStatus
from rqdag.shared.store.keys import job_id
from tests.support.runs import create_run, dispatch
from tests.support.workers import Env, path_of


def test_a_failed_task_is_a_failed_rq_job_with_its_message(env: Env) -> None:
    create_run(env.conn, "rf")
    failed = dispatch(env.conn, "rf", "bad", path_of("fail"), retries=2)
    good = dispatch(env.conn, "rf", "good", path_of("echo"))

    proc = env.run_worker(name="w-rq")

    result = env.result("rf", "good")
    assert result is not None and result.status == TaskStatus.SUCCESS
    entry = env.entry("rf", "bad")  # a retry follows: rqdag keeps the attempt, RQ holds the job failed
    assert entry is not None and entry["state"] == "retry_wait"
    assert [e["kind"] for e in env.events("rf") if e.get("task") == "bad"] == ["started", "retry"]
    failure = env.rq_failure(failed)
    assert failure is not None and failure[0] == "failed"
    assert "run 'rf', task 'bad', attempt 1: failure: RuntimeError: boom in bad" in failure[1]
    assert "Traceback" in failure[1] and "worker_tasks.py" in failure[1]  # the task's own traceback
    assert env.rq_failure(good) is None and env.job_return(good) == "success"

    failed_job = Job.fetch(job_id("rf", "bad", 1), env.conn, serializer=JSONSerializer)
    assert failed_job.retries_left is None  # RQ never retries it: rqdag retries with a new attempt
    registry = FailedJobRegistry("default", connection=env.conn)
    assert registry.get_job_ids() == [failed_job.id]
    assert FinishedJobRegistry("default", connection=env.conn).get_job_ids() == [job_id("rf", "good", 1)]
    assert [line["task"] for line in env.ledger_lines()].count("bad") == 1  # ran once, finished once

    output = proc.stdout + proc.stderr
    bad_lines = [line for line in output.splitlines() if failed_job.id in line]
    assert not any("Successfully completed" in line or "Job OK" in line for line in bad_lines), output
    assert any("failure: RuntimeError: boom in bad; marked failed in RQ" in line for line in bad_lines)
    assert "Traceback" not in output  # one line, not RQ's traceback of rqdag's own frames

    info = subprocess.run(
        [sys.executable, "-m", "rq.cli", "info", "--url", env.url, "--only-queues"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "1 finished, 1 failed" in info.stdout.replace("  ", " "), info.stdout


def test_a_final_failure_too_and_an_unregistered_function(env: Env) -> None:
    create_run(env.conn, "rg")
    last = dispatch(env.conn, "rg", "last", path_of("fail"), attempt=3, retries=2)
    evil = dispatch(env.conn, "rg", "evil", "os:getcwd")

    env.run_worker()

    for spec in (last, evil):
        result = env.result("rg", spec.task)
        assert result is not None and result.status == TaskStatus.FAILURE
        failure = env.rq_failure(spec)
        assert failure is not None and failure[0] == "failed"
        assert (result.message or "") in failure[1]
