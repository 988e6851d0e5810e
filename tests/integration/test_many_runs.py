"""One ``rqdag coordinator --max-runs N`` drives more runs at once than a default pool has connections.

A driver is a thread holding a Redis connection while it waits for its run's
events (two while its run loads). With one client whose pool held 100
connections, a coordinator given 300 runs failed drivers with "Too many
connections" and drove the runs in slow waves of retries.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import redis
from rq import Queue

from rqdag import Task, Workflow
from rqdag.client import Client
from rqdag.shared.connect import connect
from rqdag.shared.model.vocabulary import RunStatus
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import step
from tests.support.processes import FLOWS, Procs
from tests.support.wait import wait_until
from tests.support.workers import register_stand_in

RUNS = 300
OLD_POOL = 100
one_task = Workflow("one-task", [Task("only", step)])


def _blpop_from_threads(client: redis.Redis, threads: int) -> list[BaseException]:
    """``threads`` threads each holding a connection for 0.2 s at once; what they raised."""
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            client.blpop(["nothing"], timeout=0.2)
        except redis.RedisError as exc:
            errors.append(exc)

    pool = [threading.Thread(target=wait) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return errors


def test_threads_past_a_blocking_pool_wait_for_a_connection_where_a_plain_pool_fails(redis_url: str) -> None:
    plain = connect(redis_url, pool_size=2)
    blocking = connect(redis_url, pool_size=2, blocking=True, pool_timeout=10)
    try:
        assert any("Too many connections" in str(e) for e in _blpop_from_threads(plain, 6))
        started = time.monotonic()
        assert _blpop_from_threads(blocking, 6) == []
        assert time.monotonic() - started >= 0.5  # three turns of two connections
        assert len(blocking.connection_pool._connections) == 2  # type: ignore[attr-defined]
    finally:
        plain.close()
        blocking.close()


def test_a_coordinator_drives_300_runs_at_once_without_running_out_of_connections(
    redis_url: str, redis_conn: redis.Redis, procs: Procs
) -> None:
    coordinator = procs.coordinator(redis_url, "--max-runs", str(RUNS))
    wait_until(lambda: " started" in procs.log("coordinator"), 30, "the coordinator to start")
    before = len(redis_conn.client_list())
    client = Client(redis_url)
    store = RunStore(client.connection)
    ids = [f"many-{i}" for i in range(RUNS)]
    # the workers' registry entry, before they run: the drivers route the jobs to their queue
    queue = Queue(register_stand_in(redis_conn, (FLOWS,)), connection=redis_conn)
    started = time.monotonic()
    for run_id in ids:
        client.submit(one_task, run_id=run_id)
    # No worker yet: every driver dispatches its run's task and then waits on it, all at once.
    wait_until(lambda: queue.count == RUNS, 30, f"all {RUNS} runs dispatched, their drivers waiting")
    assert len(redis_conn.client_list()) - before > 2 * OLD_POOL, "each waiting driver holds a connection"
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    wait_until(lambda: all(store.read_meta(r).finished for r in ids), 60, f"{RUNS} runs to end", 0.2)
    elapsed = time.monotonic() - started
    statuses = Counter(store.read_meta(r).status for r in ids)
    assert statuses == {RunStatus.SUCCEEDED: RUNS}
    assert coordinator.poll() is None, "the coordinator is still up"
    log = procs.log("coordinator")
    assert "Too many connections" not in log
    assert "No connection available" not in log
    assert " ERROR " not in log
    ran = Counter(line["run_id"] for line in procs.ledger_lines())
    assert ran == dict.fromkeys(ids, 1), "every run's task ran exactly once"
    assert elapsed < 45, f"{RUNS} one-task runs took {elapsed:.1f}s"
