"""The retry budget holds for lost attempts whatever the cause, done to real processes.

A lost attempt (its worker SIGKILLed, or handed back by a worker that was told to stop) counts
as a failed attempt: a task runs at most ``1 + max(retry.attempts, 1)`` times, also when the
coordinator that counts took the run over in between (after a SIGKILL, or a Redis outage).
The ledger the tasks write counts the starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rq import Worker

from rqdag import Client, TaskStatus
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.workers import live_workers
from tests.integration.budget_flows import TASKS, lonely
from tests.support.processes import Procs
from tests.support.wait import wait_until

LIMIT_S = 1.5


def _attempt_running(store: RunStore, run_id: str, attempt: int) -> DispatchEntry | None:
    entry = store.read_state(run_id).dispatch.get("only")
    if entry is None or entry.attempt != attempt or entry.state != "running":
        return None
    return entry


def _starts(procs: Procs) -> int:
    return sum(1 for line in procs.ledger_lines() if line.get("phase") == "start")


def _pid(entry: DispatchEntry) -> int:
    return int((entry.worker or "x:0").rsplit(":", 1)[1])


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _decided_or_started(store: RunStore, run_id: str, procs: Procs, starts: int) -> Callable[[], bool]:
    return lambda: "only" in store.read_state(run_id).results or _starts(procs) > starts


@pytest.mark.parametrize("reload", ["coordinator SIGKILL", "Redis outage"])
def test_a_lost_attempt_counts_also_after_the_run_is_taken_over(
    fresh_redis: Callable[..., RedisServer], procs: Procs, tmp_path: Path, reload: str
) -> None:
    server = fresh_redis()
    url = server.url
    w1 = procs.worker(url, name="w1", tasks=TASKS)
    c1 = procs.coordinator(url, "--lease-ttl", "1.5", name="c1")
    client = Client(url)
    store = RunStore(client.connection)
    gate = tmp_path / "never"
    run = client.submit(lonely(0), params={"gate": str(gate)}, run_id="budget", heartbeat_timeout_s=LIMIT_S)
    wait_until(lambda: _attempt_running(store, run.run_id, 1) is not None, 30, "attempt 1 running")
    # the attempt is running once its worker claimed it; its body writes the ledger a moment later
    wait_until(lambda: _starts(procs) == 1, 30, "attempt 1's body to start")
    _kill(w1)  # lost once: a task without retries runs once more
    w2 = procs.worker(url, name="w2", tasks=TASKS)
    wait_until(lambda: _attempt_running(store, run.run_id, 2) is not None, 30, "attempt 2 running")
    wait_until(lambda: _starts(procs) == 2, 30, "attempt 2's body to start")
    if reload == "coordinator SIGKILL":
        fence = store.read_meta(run.run_id).fence
        _kill(c1)
        procs.coordinator(url, "--lease-ttl", "1.5", name="c2")
        wait_until(lambda: store.read_meta(run.run_id).fence > fence, 20, "c2 to take the run over")
    else:
        time.sleep(1.2)  # appendfsync everysec: the entries are on disk
        server.stop()
        time.sleep(4.5)  # the coordinator's driver gives up on Redis and loads the run again
        server.start()
        wait_until(lambda: "Redis reachable again" in procs.log("c1"), 20, "c1 to see Redis back")
    time.sleep(1.0)
    entry = _attempt_running(store, run.run_id, 2)
    assert entry is not None and _pid(entry) == w2.pid, store.read_state(run.run_id).dispatch
    _kill(w2)  # lost twice: no run is left
    procs.worker(url, name="w3", tasks=TASKS)  # would run attempt 3, were one dispatched
    wait_until(_decided_or_started(store, run.run_id, procs, 2), 30, "the task's result (or a 3rd start)")
    time.sleep(0.5)
    assert _starts(procs) == 2, f"a task with no retries started {_starts(procs)} times"
    result = run.snapshot()["only"]
    assert result.status is TaskStatus.FAILURE and "lost" in (result.message or "")
    assert result.metrics.attempt == 2


@pytest.mark.parametrize("retries", [0, 2])
def test_a_task_handed_back_by_a_stopping_worker_costs_an_attempt(
    redis_url: str, procs: Procs, tmp_path: Path, retries: int
) -> None:
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    gate = tmp_path / "never"
    # a heartbeat limit far longer than the test: only hand-backs end these attempts
    run = client.submit(lonely(retries), params={"gate": str(gate)}, run_id="handed", heartbeat_timeout_s=120)
    budget = 1 + max(retries, 1)
    for attempt in range(1, budget + 2):
        worker = procs.worker(redis_url, "--shutdown-grace", "0.5", name=f"w{attempt}", tasks=TASKS)
        decided = _decided_or_started(store, run.run_id, procs, budget)

        def running_or_decided(attempt: int = attempt, decided: Callable[[], bool] = decided) -> bool:
            return decided() or _attempt_running(store, run.run_id, attempt) is not None

        wait_until(running_or_decided, 30, f"attempt {attempt} running (or the task decided)")
        if decided():
            break
        worker.send_signal(signal.SIGTERM)  # past its 0.5 s grace the task is handed back
        worker.wait(timeout=15)
        # it handed its task back and left both registries as it exited (not a heartbeat limit later)
        assert worker.pid not in {w.pid for w in live_workers(client.connection)}, "in rqdag's registry"
        assert worker.pid not in {w.pid for w in Worker.all(connection=client.connection)}, "in RQ's"
    wait_until(_decided_or_started(store, run.run_id, procs, budget), 30, "the task's result")
    time.sleep(0.5)
    assert _starts(procs) == budget, f"retry=Retry({retries}): {_starts(procs)} starts, budget {budget}"
    result = run.snapshot()["only"]
    assert result.status is TaskStatus.FAILURE and "handed the task back" in (result.message or "")
    assert result.metrics.attempt == budget
    kinds = [f[b"kind"] for _, f in client.connection.xrange(RunKeys(run.run_id).events)]
    assert kinds.count(b"handback") == budget
