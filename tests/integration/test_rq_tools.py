"""RQ's own tools tell the truth about rqdag jobs: ``rq info``, RQ's registries, RQ's worker API.

A failed task is a failed RQ job (in RQ's FailedJobRegistry, with the task's
message, never retried by RQ) while rqdag's result stays the authority, written
exactly once; a success is a finished one; the worker logs neither a failure
nor a refusal as "Successfully completed".
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer

from rqdag.shared.model.task import TaskStatus
from rqdag.shared.store.keys import RunKeys, job_id
from tests.support.processes import Procs
from tests.support.redis import free_port
from tests.support.runs import create_run, dispatch
from tests.support.wait import wait_until
from tests.support.workers import Env, path_of, worker_queue


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
    registry = FailedJobRegistry(worker_queue(), connection=env.conn)
    assert registry.get_job_ids() == [failed_job.id]
    assert FinishedJobRegistry(worker_queue(), connection=env.conn).get_job_ids() == [job_id("rf", "good", 1)]
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
    last = dispatch(env.conn, "rg", "last", path_of("fail"), attempt=3, retries=2, failures=2)
    evil = dispatch(env.conn, "rg", "evil", "os:getcwd")

    env.run_worker()

    for spec in (last, evil):
        result = env.result("rg", spec.task)
        assert result is not None and result.status == TaskStatus.FAILURE
        failure = env.rq_failure(spec)
        assert failure is not None and failure[0] == "failed"
        assert (result.message or "") in failure[1]


def _get_json(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _answers(port: int) -> bool:
    try:
        return _get_json(port, "/0/data/queues.json")[0] == 200
    except OSError:
        return False


def test_rq_dashboard_shows_busy_workers_and_jobs(env: Env, procs: Procs) -> None:
    pytest.importorskip("rq_dashboard")
    port = free_port()
    procs.spawn("rq-dashboard", "--redis", env.url, "--port", str(port), name="dashboard")
    wait_until(lambda: _answers(port), 30, "rq-dashboard answering")
    create_run(env.conn, "rb")
    failing = dispatch(env.conn, "rb", "bad", path_of("fail"))  # taken first: it has failed by then
    create_run(env.conn, "rd", {"wait": 20})
    busy = dispatch(env.conn, "rd", "slow", path_of("until_cancelled"))
    procs.start(env.worker_command(name="w-dash"), name="worker", env=env.environ())
    wait_until(lambda: (env.entry("rd", "slow") or {}).get("state") == "running", 20, "the task running")

    status, workers = _get_json(port, "/0/data/workers.json")
    assert status == 200, procs.log("dashboard")[-3000:]
    [worker] = workers["workers"]
    assert worker["name"] == "w-dash" and worker["state"] == "busy" and worker["queues"] == [worker_queue()]
    current = worker["current_job"]
    stored = Job.fetch(job_id("rd", "slow", 1), env.conn, serializer=JSONSerializer)
    assert current["job_id"] == stored.id and current["description"] == stored.description
    assert current["call_string"].startswith("rqdag.worker.job.run_task(")
    assert f"token='{busy.token}'" in current["call_string"]
    status, started = _get_json(port, f"/0/data/jobs/{worker_queue()}/started/8/asc/1.json")
    assert status == 200 and [j["id"] for j in started["jobs"]] == [job_id("rd", "slow", 1)]
    status, job = _get_json(port, f"/0/data/job/{job_id('rd', 'slow', 1)}.json")
    assert status == 200 and job["status"] == "started" and job["description"] == stored.description

    assert env.rq_failure(failing) is not None
    status, failed = _get_json(port, f"/0/data/jobs/{worker_queue()}/failed/8/asc/1.json")
    assert status == 200
    by_id = {j["id"]: j for j in failed["jobs"]}
    assert "failure: RuntimeError: boom in bad" in by_id[job_id("rb", "bad", 1)]["exc_info"]
    status, queues = _get_json(port, "/0/data/queues.json")
    assert status == 200 and queues["queues"][0]["failed_job_registry_count"] == 1
    env.conn.hset(RunKeys("rd").meta, "cancel", "enough")  # the busy task ends, the burst worker exits
