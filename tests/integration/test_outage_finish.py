"""Redis outages while tasks finish, done to real processes: a real redis-server stopped and
started again on its port, real ``rqdag worker`` and ``rqdag coordinator`` subprocesses.

A worker that holds a finished result keeps it through the outage and writes it once Redis is
back; the coordinator does not declare attempts lost from heartbeats that went silent only
because Redis was away. The ledger the tasks write shows that nothing started twice.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rqdag import Client, TaskStatus
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store.records import FINISHED_STATUSES
from rqdag.shared.store.runs import RunStore
from tests.integration.budget_flows import TASKS, finishing
from tests.support.processes import Procs
from tests.support.wait import wait_until

OUTAGE_S = 2.5  # far longer than a client's own retries of one command (rqdag.shared.connect)
LIMIT_S = 3.0  # the run's heartbeat limit: the outage is shorter


def _running(store: RunStore, run_id: str) -> set[str]:
    return {n for n, e in store.read_state(run_id).dispatch.items() if e.state == "running"}


def _lines(procs: Procs, phase: str) -> Counter[str]:
    return Counter(line["task"] for line in procs.ledger_lines() if line.get("phase", "start") == phase)


def _settled(run_status: Callable[[], str]) -> Callable[[], bool]:
    return lambda: run_status() in (*FINISHED_STATUSES, "blocked")


def test_results_finished_while_redis_is_down_are_written_once_it_is_back(
    fresh_redis: Callable[..., RedisServer], procs: Procs, tmp_path: Path
) -> None:
    server = fresh_redis()
    workers = [procs.worker(server.url, name=f"w{i}", tasks=TASKS) for i in (1, 2)]
    procs.coordinator(server.url)
    client = Client(server.url)
    store = RunStore(client.connection)
    gate = tmp_path / "gate"
    params = {"gate": str(gate)}
    run = client.submit(finishing, params=params, run_id="finish-outage", heartbeat_timeout_s=LIMIT_S)
    wait_until(lambda: _running(store, run.run_id) == {"a", "m"}, 30, "a and m running")
    time.sleep(1.2)  # the AOF has both 'running' entries on disk (appendfsync everysec)
    server.stop()
    gate.touch()  # both tasks end now: their finish steps meet the outage
    wait_until(lambda: _lines(procs, "end").keys() >= {"a", "m"}, 10, "a and m to have their results")
    time.sleep(OUTAGE_S)
    server.start()
    wait_until(_settled(lambda: run.status().status), 60, "the run to end (or block)")
    results = run.snapshot()
    assert run.status().status == "succeeded", {n: r.message for n, r in results.items()}
    for name in ("a", "m"):
        assert results[name].status is TaskStatus.SUCCESS and results[name].metrics.attempt == 1
        assert not results[name].in_doubt
    starts = _lines(procs, "start")
    assert starts == {"a": 1, "m": 1, "z": 1}, "a finished result was dropped and its task ran again"
    for index, proc in enumerate(workers, 1):
        log = procs.log(f"w{index}")
        assert proc.poll() is None, f"w{index} exited: {log[-2000:]}"
        assert "unhandled exception" not in log, log[-3000:]


def test_heartbeats_silent_while_redis_was_down_get_a_heartbeat_limit_after_it_is_back(
    fresh_redis: Callable[..., RedisServer], procs: Procs, tmp_path: Path
) -> None:
    """The worker's first heartbeat after the outage comes a while after Redis is back (its own
    reconnection back-off and heartbeat interval): within the limit, it is not lost."""
    server = fresh_redis()
    w1 = procs.worker(server.url, name="w1", tasks=TASKS)
    procs.coordinator(server.url)
    client = Client(server.url)
    store = RunStore(client.connection)
    gate = tmp_path / "gate"
    params = {"gate": str(gate)}
    run = client.submit(finishing, params=params, run_id="silent-outage", heartbeat_timeout_s=LIMIT_S)
    wait_until(lambda: bool(_running(store, run.run_id)), 30, "a task running on w1")
    procs.worker(server.url, name="w2", tasks=TASKS)  # would run it again, were it declared lost
    # w2 runs the other task before the outage: its attempt, dequeued but not started when Redis
    # went away, would be retried (rightly), and the test is about w1's silence only
    wait_until(lambda: _running(store, run.run_id) == {"a", "m"}, 30, "the other task running on w2")
    time.sleep(1.2)  # the AOF has both 'running' entries on disk (appendfsync everysec)
    server.stop()
    os.kill(w1.pid, signal.SIGSTOP)
    try:
        time.sleep(LIMIT_S + 0.5)  # longer than the heartbeat limit: only a grace after it saves w1
        server.start()
        time.sleep(2.0)  # Redis is back; w1 has not said a word yet (the coordinator has looked)
    finally:
        os.kill(w1.pid, signal.SIGCONT)
    time.sleep(1.0)
    gate.touch()
    wait_until(_settled(lambda: run.status().status), 60, "the run to end (or block)")
    results = run.snapshot()
    assert run.status().status == "succeeded", {n: r.message for n, r in results.items()}
    starts = _lines(procs, "start")
    assert starts == {"a": 1, "m": 1, "z": 1}, "an attempt was declared lost from a Redis outage"
    attempts = {n: results[n].metrics.attempt for n in ("a", "m")}
    assert attempts == {"a": 1, "m": 1}, {n: r.message for n, r in results.items()}
