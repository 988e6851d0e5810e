"""A task while it runs: heartbeats, cancels, a coordinator that gave up, RQ's view."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rq import Worker

from rqdag.shared.model.task import TaskStatus
from rqdag.shared.store.keys import RunKeys
from tests.support import REPO
from tests.support.runs import create_run, dispatch
from tests.support.wait import wait_for
from tests.support.workers import TASKS, Env, path_of


def running_entry(env: Env, run_id: str, task: str, *, beaten: bool = False) -> dict[str, Any] | None:
    """The dispatch entry once it is running (and, with ``beaten``, has had a heartbeat)."""
    entry = env.entry(run_id, task)
    if entry is None or entry.get("state") != "running":
        return None
    if beaten and entry["heartbeat_at"] <= entry["started_at"]:
        return None
    return entry


@dataclass
class RunningWorker:
    """A worker process, and its output once it has exited."""

    proc: subprocess.Popen[str]
    output: str = ""


@contextmanager
def worker_running(env: Env, command: list[str]) -> Iterator[RunningWorker]:
    """A burst worker process; on leaving, wait for it and check it exited cleanly."""
    proc = subprocess.Popen(
        command, env=env.environ(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    worker = RunningWorker(proc)
    try:
        yield worker
    finally:
        try:
            worker.output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            worker.output, _ = proc.communicate()
    assert proc.returncode == 0, worker.output


def test_heartbeats_while_a_task_runs(env: Env) -> None:
    create_run(env.conn, "r1", {"sleep": 1.5})
    dispatch(env.conn, "r1", "slow", path_of("sleepy"))

    with worker_running(env, env.worker_command(name="w-beat", heartbeat_interval=0.2)):
        entry = wait_for(lambda: running_entry(env, "r1", "slow", beaten=True))
        assert entry["worker"] == "w-beat"
        assert "w-beat" in [w.name for w in Worker.all(connection=env.conn)]

    assert "w-beat" not in [w.name for w in Worker.all(connection=env.conn)]
    result = env.result("r1", "slow")
    assert result is not None and result.status == TaskStatus.SUCCESS


def test_a_cancelled_run_sets_ctx_cancelled(env: Env) -> None:
    create_run(env.conn, "r2", {"wait": 4})
    dispatch(env.conn, "r2", "patient", path_of("until_cancelled"))

    with worker_running(env, env.worker_command(heartbeat_interval=0.1)):
        wait_for(lambda: running_entry(env, "r2", "patient"))
        asked = time.monotonic()
        env.conn.hset(RunKeys("r2").meta, "cancel", "cancelled by the operator")
        wait_for(lambda: env.result("r2", "patient"))
        assert time.monotonic() - asked < 2

    result = env.result("r2", "patient")
    assert result is not None and result.data is True


def test_a_late_result_is_refused(env: Env) -> None:
    create_run(env.conn, "r3", {"wait": 4})
    spec = dispatch(env.conn, "r3", "slow", path_of("until_cancelled"))

    with worker_running(env, env.worker_command(heartbeat_interval=0.1)) as worker:
        entry = wait_for(lambda: running_entry(env, "r3", "slow"))
        # the coordinator gives up on this attempt and hands the task out again
        env.conn.hset(
            RunKeys("r3").dispatch, "slow", json.dumps({**entry, "token": "new", "state": "queued"})
        )

    assert env.result("r3", "slow") is None
    assert env.entry("r3", "slow") == {**entry, "token": "new", "state": "queued"}
    refused = [e for e in env.events("r3") if e["kind"] == "refused"]
    assert refused == [{"kind": "refused", "task": "slow", "token": spec.token, "status": "success"}]
    assert "late result refused" in worker.output and spec.token in worker.output
    failure = env.rq_failure(spec)  # RQ holds the job as failed, saying why; never as completed
    assert failure is not None and failure[0] == "failed"
    refusal = f"refused: its result (success) came too late and was not written: token {spec.token}"
    assert refusal in failure[1]
    assert "Successfully completed" not in worker.output and " refused: " in worker.output


SIMPLE_WORKER_WITH_FAST_RQ_HEARTBEATS = """
import sys
import redis
from rqdag.worker.environment import WorkerSettings
from rqdag.worker.start import create_worker
connection = redis.Redis.from_url(sys.argv[1])
worker = create_worker(connection, WorkerSettings(tasks=(sys.argv[2],)), name="w-rq")
worker.job_monitoring_interval = 0.2
worker.work(burst=True)
"""


def test_a_simple_worker_keeps_rq_heartbeats_during_a_long_task(env: Env) -> None:
    create_run(env.conn, "r4", {"sleep": 1.5})
    dispatch(env.conn, "r4", "slow", path_of("sleepy"))
    command = [sys.executable, "-c", SIMPLE_WORKER_WITH_FAST_RQ_HEARTBEATS, env.url, TASKS]

    def last_heartbeat() -> bytes | None:
        value = env.conn.hget("rq:worker:w-rq", "last_heartbeat")
        return value if running_entry(env, "r4", "slow") else None

    with worker_running(env, command):
        first = wait_for(last_heartbeat)
        later = wait_for(lambda: (value := last_heartbeat()) != first and value)
        assert later > first

    result = env.result("r4", "slow")
    assert result is not None and result.status == TaskStatus.SUCCESS


def test_sigterm_lets_the_running_task_finish_first(env: Env) -> None:
    create_run(env.conn, "r5", {"sleep": 1.0})
    dispatch(env.conn, "r5", "slow", path_of("sleepy"))

    with worker_running(env, env.worker_command(burst=False)) as worker:
        wait_for(lambda: running_entry(env, "r5", "slow"))
        worker.proc.send_signal(signal.SIGTERM)

    result = env.result("r5", "slow")
    assert result is not None and result.status == TaskStatus.SUCCESS
    assert env.entry("r5", "slow") is None
