"""One ``rqdag coordinator --max-runs N`` drives thousands of runs at once with a few threads.

A coordinator once drove each run in its own thread, holding a Redis connection
while it waited for its run's events: 300 runs needed 600 connections. Its
driver loops now multiplex the runs (one XREAD over all their event streams),
so threads and connections stay bounded however many runs it drives, and a
coordinator killed while multiplexing leaves every run to the next one.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
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

RUNS = 2_000
TAKEN_OVER = 500
MAX_THREADS = 40
MAX_CONNECTIONS = 60
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


class Peaks:
    """Samples a process's thread count (/proc/PID/status) and Redis's client count every 50 ms."""

    def __init__(self, pid: int, client: redis.Redis) -> None:
        self._pid = pid
        self._client = client
        self.threads = 0
        self.clients = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.threads = max(self.threads, thread_count(self._pid))
            self.clients = max(self.clients, len(self._client.client_list()))


def thread_count(pid: int) -> int:
    """The ``Threads:`` line of /proc/PID/status (0 once the process is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:"))


def _submit_all(redis_url: str, ids: list[str]) -> RunStore:
    client = Client(redis_url)
    for run_id in ids:
        client.submit(one_task, run_id=run_id)
    return RunStore(client.connection)


def _check_all_succeeded_once(procs: Procs, store: RunStore, ids: list[str]) -> None:
    statuses = Counter(store.read_meta(r).status for r in ids)
    assert statuses == {RunStatus.SUCCEEDED: len(ids)}
    ran = Counter(line["run_id"] for line in procs.ledger_lines())
    assert ran == dict.fromkeys(ids, 1), "every run's task ran exactly once"


@pytest.mark.timeout(400)  # 2,000 runs on a shared 2-core machine
def test_a_coordinator_drives_2000_runs_at_once_with_few_threads_and_connections(
    redis_url: str, redis_conn: redis.Redis, procs: Procs
) -> None:
    coordinator = procs.coordinator(redis_url, "--max-runs", str(RUNS))
    wait_until(lambda: " started" in procs.log("coordinator"), 30, "the coordinator to start")
    before = len(redis_conn.client_list())
    ids = [f"many-{i}" for i in range(RUNS)]
    # the workers' registry entry, before they run: the drivers route the jobs to their queue
    queue = Queue(register_stand_in(redis_conn, (FLOWS,)), connection=redis_conn)
    with Peaks(coordinator.pid, redis_conn) as peaks:
        started = time.monotonic()
        store = _submit_all(redis_url, ids)
        # No worker yet: every run is dispatched and then waits on its task, all at once.
        wait_until(lambda: queue.count == RUNS, 180, f"all {RUNS} runs dispatched, waiting")
        procs.worker(redis_url, name="w1")
        procs.worker(redis_url, name="w2")
        wait_until(lambda: not store.active_runs(), 240, f"{RUNS} runs to end", 0.2)
        elapsed = time.monotonic() - started
    _check_all_succeeded_once(procs, store, ids)
    assert coordinator.poll() is None, "the coordinator is still up"
    assert 0 < peaks.threads < MAX_THREADS, f"the coordinator ran {peaks.threads} threads"
    connections = peaks.clients - before - 2  # the two workers' own
    assert connections < MAX_CONNECTIONS, f"the coordinator held {connections} connections"
    log = procs.log("coordinator")
    assert "Too many connections" not in log
    assert "No connection available" not in log
    assert " ERROR " not in log
    assert elapsed < 360, f"{RUNS} one-task runs took {elapsed:.1f}s"


@pytest.mark.timeout(300)
def test_a_second_coordinator_takes_over_every_run_of_one_killed_while_multiplexing(
    redis_url: str, redis_conn: redis.Redis, procs: Procs
) -> None:
    first = procs.coordinator(redis_url, "--max-runs", str(TAKEN_OVER), "--lease-ttl", "2", name="first")
    wait_until(lambda: " started" in procs.log("first"), 30, "the first coordinator to start")
    ids = [f"taken-{i}" for i in range(TAKEN_OVER)]
    queue = Queue(register_stand_in(redis_conn, (FLOWS,)), connection=redis_conn)
    store = _submit_all(redis_url, ids)
    wait_until(lambda: queue.count == TAKEN_OVER, 60, "every run dispatched by the first coordinator")
    procs.worker(redis_url, name="w1")
    wait_until(lambda: len(procs.ledger_lines()) >= TAKEN_OVER // 4, 60, "some tasks to run")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    procs.coordinator(redis_url, "--max-runs", str(TAKEN_OVER), "--lease-ttl", "2", name="second")
    procs.worker(redis_url, name="w2")
    wait_until(lambda: not store.active_runs(), 120, f"{TAKEN_OVER} runs to end", 0.2)
    _check_all_succeeded_once(procs, store, ids)
    assert "took it over from" in procs.log("second")


@pytest.mark.timeout(400)
def test_a_coordinator_busy_with_2000_runs_renews_every_lease_and_a_watcher_takes_none(
    redis_url: str, redis_conn: redis.Redis, procs: Procs
) -> None:
    # A 2 s lease: a loop that renewed only between its steps would let some run out while
    # it loads, dispatches and finishes 2,000 runs; the watcher polls every 0.2 s for one.
    busy = procs.coordinator(redis_url, "--max-runs", str(RUNS), "--lease-ttl", "2", name="busy")
    wait_until(lambda: " started" in procs.log("busy"), 30, "the busy coordinator to start")
    ids = [f"kept-{i}" for i in range(RUNS)]
    queue = Queue(register_stand_in(redis_conn, (FLOWS,)), connection=redis_conn)
    store = _submit_all(redis_url, ids)
    wait_until(lambda: queue.count == RUNS, 180, f"all {RUNS} runs dispatched by the busy coordinator")
    procs.coordinator(
        redis_url, "--max-runs", str(RUNS), "--lease-ttl", "2", "--poll-interval", "0.2", name="watcher"
    )
    wait_until(lambda: " started" in procs.log("watcher"), 30, "the watcher to start")
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    wait_until(lambda: not store.active_runs(), 240, f"{RUNS} runs to end", 0.2)
    _check_all_succeeded_once(procs, store, ids)
    assert busy.poll() is None, "the busy coordinator is still up"
    busy_log, watcher_log = procs.log("busy"), procs.log("watcher")
    assert len(re.findall(r"run 'kept-\d+' succeeded", busy_log)) == RUNS, "the busy one ended them all"
    for name, log in (("busy", busy_log), ("watcher", watcher_log)):
        assert log.count("took it over from") == 0, f"{name}: runs taken over from a live coordinator"
        assert log.count("lease lost") == 0, f"{name}: leases lost"
        assert log.count("drives it") == (RUNS if name == "busy" else 0), f"{name}: runs driven"
