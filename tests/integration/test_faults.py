"""Faults done to real processes: SIGKILL, SIGSTOP and SIGTERM of workers and coordinators."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from rqdag import TaskStatus
from rqdag.client import Client, RunHandle
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.resolve import read_audit, resolve_task
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.workers import live_workers
from tests.integration.flows import faulty, fifty
from tests.support.ledger import successes_ran_once
from tests.support.processes import Procs
from tests.support.wait import wait_until


def _running_pids(store: RunStore, run_id: str, tasks: set[str]) -> dict[str, int]:
    entries = store.read_state(run_id).dispatch
    return {
        name: int((e.worker or "x:0").rsplit(":", 1)[1])
        for name, e in entries.items()
        if name in tasks and e.state == "running"
    }


def _starts(procs: Procs) -> Counter[str]:
    return Counter(line["task"] for line in procs.ledger_lines() if line.get("phase") != "end")


def test_worker_killed_mid_task_retries_at_least_once_and_blocks_at_most_once(
    redis_url: str, procs: Procs
) -> None:
    w1 = procs.worker(redis_url, name="w1")
    w2 = procs.worker(redis_url, name="w2")
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(faulty, params={"slow_s": 3}, run_id="killed-worker", heartbeat_timeout_s=1.5)
    wait_until(lambda: len(_running_pids(store, run.run_id, {"b", "m"})) == 2, 30, "b and m running")
    for proc in (w1, w2):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    procs.worker(redis_url, name="w3")
    wait_until(lambda: run.status().status == "blocked", 40, "the run to show as blocked")
    results = run.snapshot()
    assert results["b"].status is TaskStatus.SUCCESS and results["c"].status is TaskStatus.SUCCESS
    assert results["x"].status is TaskStatus.SUCCESS
    assert results["m"].status is TaskStatus.FAILURE and results["m"].in_doubt
    assert "outcome unknown" in (results["m"].message or "")
    assert "n" not in results, "a dependent of an in-doubt task is neither run nor skipped"
    starts = _starts(procs)
    assert starts["b"] == 2, "the lost at-least-once task ran again"
    assert starts["m"] == 1, "the at-most-once task never ran twice"

    # wait() keeps waiting through the block, and returns once an operator resolves it
    outcome: dict[str, object] = {}
    waiter = threading.Thread(target=lambda: outcome.update(r=run.wait(timeout=60)))
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive()
    resolve_task(
        store, run.run_id, "m", status=TaskStatus.SUCCESS, data={"n": 1}, reason="charged", who="ops"
    )
    waiter.join(timeout=60)
    final = outcome["r"]
    assert isinstance(final, dict)
    assert run.status().status == "succeeded"
    assert final["n"].status is TaskStatus.SUCCESS
    assert final["m"].message == "resolved by ops: charged"
    audit = read_audit(store, run.run_id, "m")
    assert audit[-1]["who"] == "ops" and audit[-1]["previous"]["status"] == "failure"
    assert _starts(procs)["m"] == 1


def test_zombie_worker_late_result_is_refused(redis_url: str, procs: Procs) -> None:
    w1 = procs.worker(redis_url, name="w1")
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(faulty, params={"slow_s": 2}, run_id="zombie", heartbeat_timeout_s=1.0)
    wait_until(lambda: bool(_running_pids(store, run.run_id, {"b", "m"})), 30, "a slow task running")
    victim = next(iter(_running_pids(store, run.run_id, {"b", "m"})))
    assert _running_pids(store, run.run_id, {victim})[victim] == w1.pid
    os.kill(w1.pid, signal.SIGSTOP)
    try:
        procs.worker(redis_url, name="w2")
        wait_until(
            lambda: victim in run.snapshot() or run.status().status == "blocked",
            30,
            f"{victim} decided without the paused worker",
        )
        decided = run.snapshot()[victim]
    finally:
        os.kill(w1.pid, signal.SIGCONT)
    events = RunKeys(run.run_id).events

    def refused() -> bool:
        entries = client.connection.xrange(events)
        return any(f.get(b"kind") == b"refused" and f.get(b"task") == victim.encode() for _, f in entries)

    wait_until(refused, 15, "the zombie's late result to be refused")
    assert run.snapshot()[victim] == decided, "a late result overwrote the recorded one"


def test_paused_coordinator_cannot_dispatch_after_losing_its_lease(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    c1 = procs.coordinator(redis_url, "--lease-ttl", "1.5", name="c1")
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(fifty, params={"sleep_s": 0.1}, run_id="paused-coord")
    wait_until(lambda: len(store.read_state(run.run_id).results) >= 3, 30, "the run under way")
    fence_before = store.read_meta(run.run_id).fence
    os.kill(c1.pid, signal.SIGSTOP)
    try:
        procs.coordinator(redis_url, "--lease-ttl", "1.5", name="c2")
        wait_until(lambda: store.read_meta(run.run_id).fence > fence_before, 15, "c2 to take the lease")
    finally:
        os.kill(c1.pid, signal.SIGCONT)
    results = run.wait(timeout=60)
    assert run.status().status == "succeeded"
    assert successes_ran_once(procs.ledger_lines(), list(results)) == {}
    wait_until(lambda: "lease" in procs.log("c1"), 10, "c1 to notice it lost the lease")


def test_sigterm_hands_the_lease_back_at_once(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, name="w1")
    c1 = procs.coordinator(redis_url, "--lease-ttl", "30", name="c1")
    client = Client(redis_url)
    run = client.submit(fifty, params={"sleep_s": 0.2}, run_id="handover")
    lease = RunKeys(run.run_id).lease
    wait_until(lambda: client.connection.exists(lease) == 1, 15, "c1 to lease the run")
    procs.coordinator(redis_url, "--lease-ttl", "30", name="c2")
    # the hand-over is timed from the signal, with c2 already up (not from c2's own start-up)
    wait_until(lambda: "started" in procs.log("c2"), 15, "c2 to start")
    started = time.monotonic()
    c1.send_signal(signal.SIGTERM)
    owner_c1 = client.connection.get(lease)

    def taken_over() -> bool:
        value = client.connection.get(lease)
        return value is not None and value != owner_c1

    wait_until(taken_over, 5, "c2 to take the lease")
    assert time.monotonic() - started < 3.0, "takeover must not wait for the 30 s lease TTL"
    c1.wait(timeout=15)
    results = run.wait(timeout=60)
    assert all(r.status is TaskStatus.SUCCESS for r in results.values())
    assert successes_ran_once(procs.ledger_lines(), list(results)) == {}


def test_redis_restart_mid_run(fresh_redis, procs: Procs) -> None:  # type: ignore[no-untyped-def]
    server = fresh_redis()
    url = server.url
    procs.worker(url, name="w1")
    procs.worker(url, name="w2")
    procs.coordinator(url)
    client = Client(url)
    run = client.submit(fifty, params={"sleep_s": 0.1}, run_id="redis-restart", heartbeat_timeout_s=5)
    store = RunStore(client.connection)
    wait_until(lambda: len(store.read_state(run.run_id).results) >= 10, 30, "the run under way")
    acknowledged = store.read_state(run.run_id).results
    server.stop()
    time.sleep(1.5)  # an outage, not a blip: every process notices it
    server.start()
    results = RunHandle(Client(url).connection, run.run_id).wait(timeout=90)
    assert len(results) == 50 and all(r.status is TaskStatus.SUCCESS for r in results.values())
    for name, result in acknowledged.items():
        assert results[name] == result, f"acknowledged result of {name} lost or changed"
    assert "persistence" not in procs.log("coordinator"), "an AOF-backed Redis must not be warned about"
    for worker in ("w1", "w2"):
        # a worker busy with a task is rebuilt by rqdag ("lost Redis"); one waiting for a job
        # is retried by RQ's own dequeue loop ("could not connect"); both are logged, bounded
        noticed = procs.log(worker)
        assert "lost Redis" in noticed or "could not connect to Redis" in noticed, (
            f"{worker} went through the outage without a word in its log"
        )


def test_coordinator_warns_about_a_redis_that_can_lose_runs(fresh_redis, procs: Procs) -> None:  # type: ignore[no-untyped-def]
    server = fresh_redis(appendonly=False, extra_args=("--maxmemory-policy", "allkeys-lru"))
    procs.coordinator(server.url)
    wait_until(lambda: "eviction policy" in procs.log("coordinator"), 15, "the eviction warning")
    log = procs.log("coordinator")
    assert "persistence is off" in log
    assert "allkeys-lru" in log


@pytest.mark.parametrize("garbage", [b"not json", b'{"status": "exploded"}'])
def test_garbage_in_one_run_does_not_break_the_coordinator(
    redis_url: str, procs: Procs, garbage: bytes
) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    bad = client.submit(fifty, run_id="bad-run")
    client.connection.hset(RunKeys("bad-run").results, "root", garbage)
    gone = client.submit(fifty, run_id="no-definition")
    client.connection.delete(RunKeys("no-definition").definition)
    good = client.submit(fifty, run_id="good-run")
    assert all(r.status is TaskStatus.SUCCESS for r in good.wait(timeout=60).values())
    wait_until(lambda: gone.status().status == "error", 20, "the run without definition marked error")
    assert "definition is missing" in client.connection.hget(RunKeys("no-definition").meta, "error").decode()
    bad.wait(timeout=60)
    root = bad.snapshot()["root"]
    assert root.status is TaskStatus.FAILURE and "unreadable" in (root.message or "")
    assert client.connection.hget(RunKeys("bad-run").results, "root") == garbage, (
        "garbage kept for inspection"
    )


def _events(client: Client, run_id: str, kind: bytes) -> list[dict[bytes, bytes]]:
    return [f for _, f in client.connection.xrange(RunKeys(run_id).events) if f[b"kind"] == kind]


@pytest.mark.parametrize("heir", ["ready", "late"])
def test_sigterm_worker_hands_back_a_task_that_outlasts_its_grace(
    redis_url: str, procs: Procs, heir: str
) -> None:
    """``ready``: a third worker is up from the start (idle once x is done), so b's attempt 2
    goes to it.
    ``late``: it comes only after the coordinator found b's re-sent job stranded (no live
    worker for its queue): that job never started, so it is sent again as attempt 3 and
    costs nothing from the retry budget (b has none but the one loss forgiven)."""
    code = (
        "from rqdag.worker import start_worker; "
        f"start_worker({redis_url!r}, tasks=['tests.integration.flows'], heartbeat_interval=0.5, "
        "shutdown_grace_s=0.5)"
    )
    workers = [procs.python(code, name=f"w{i}") for i in range(1, 4 if heir == "ready" else 3)]
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    live = {w.pid for w in workers}
    wait_until(lambda: {w.pid for w in live_workers(client.connection)} >= live, 30, "the workers up")
    # a heartbeat limit far longer than the test: only the hand-back can explain a quick re-dispatch
    run = client.submit(faulty, params={"slow_s": 5}, run_id="handback", heartbeat_timeout_s=120)
    wait_until(lambda: len(_running_pids(store, run.run_id, {"b", "m"})) == 2, 30, "b and m running")
    busy = set(_running_pids(store, run.run_id, {"b", "m"}).values())
    stopping = [w for w in workers if w.pid in busy]
    assert len(stopping) == 2
    stopped_at = time.monotonic()
    for proc in stopping:
        proc.send_signal(signal.SIGTERM)
    for proc in stopping:
        proc.wait(timeout=15)
    assert time.monotonic() - stopped_at < 5, "the workers left once the grace period was over"
    if heir == "late":
        wait_until(
            lambda: any(f[b"task"] == b"b" for f in _events(client, run.run_id, b"vanished")),
            30,
            "b's re-sent job found with no worker to take it",
        )
        procs.worker(redis_url, name="w3")
    wait_until(lambda: run.status().status == "blocked", 30, "b done again and m in doubt")
    results = run.snapshot()
    # b started twice (the hand-back's one failure); a re-sent job that never started adds one
    assert results["b"].status is TaskStatus.SUCCESS
    assert results["b"].metrics.attempt == (2 if heir == "ready" else 3)
    assert _starts(procs)["b"] == 2
    assert results["m"].in_doubt and "handed the task back" in (results["m"].message or "")
    assert _starts(procs)["m"] == 1
    audit = _events(client, run.run_id, b"handback")
    assert sorted(f[b"task"] for f in audit) == [b"b", b"m"], "each task handed back once"
    if heir == "ready":
        assert _events(client, run.run_id, b"vanished") == [], "with a live worker nothing is stranded"


def test_a_workers_own_heartbeat_limit_applies_to_its_tasks(redis_url: str, procs: Procs) -> None:
    w1 = procs.worker(redis_url, "--heartbeat-timeout", "1", name="w1")
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(faulty, params={"slow_s": 3}, run_id="own-limit", heartbeat_timeout_s=600)
    wait_until(lambda: bool(_running_pids(store, run.run_id, {"b", "m"})), 30, "a slow task on w1")
    entry = next(
        e
        for n, e in store.read_state(run.run_id).dispatch.items()
        if n in {"b", "m"} and e.state == "running"
    )
    assert entry.heartbeat_timeout == 1.0
    os.kill(w1.pid, signal.SIGSTOP)
    try:
        paused_at = time.monotonic()
        lost = RunKeys(run.run_id).events

        def declared_lost() -> bool:
            return any(f[b"kind"] == b"lost" for _, f in client.connection.xrange(lost))

        wait_until(declared_lost, 15, "the attempt declared lost under the worker's 1 s limit")
        assert time.monotonic() - paused_at < 10, "the run's 600 s limit did not apply"
    finally:
        os.kill(w1.pid, signal.SIGCONT)
