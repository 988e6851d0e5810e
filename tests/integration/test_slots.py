"""The concurrent worker (``--concurrency N``) and async tasks, on real processes.

Each guarantee of a one-task worker holds per slot: several tasks run at once in
one process, a SIGKILL loses every attempt in flight (each re-run once, an
at-most-once one in doubt), a hung async task is cancelled at its timeout while
the other slots go on, and SIGTERM gives every slot the grace, then hands back.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from rq import Worker
from rq.registry import StartedJobRegistry

from rqdag import TaskRunnerBuilder, TaskStatus
from rqdag.client import Client
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.runs import RunStore
from tests.integration.slot_flows import asynchronous, four_blocking, hung, in_flight
from tests.support.processes import Procs
from tests.support.wait import wait_until
from tests.support.workers import worker_queue

SLOT_FLOWS = "tests.integration.slot_flows"


def _running(store: RunStore, run_id: str) -> set[str]:
    return {name for name, e in store.read_state(run_id).dispatch.items() if e.state == "running"}


def _all_beaten(store: RunStore, run_id: str) -> int:
    entries = store.read_state(run_id).dispatch.values()
    return sum(1 for e in entries if e.heartbeat_at and e.started_at and e.heartbeat_at > e.started_at)


def _starts(procs: Procs, run_id: str) -> Counter[str]:
    return Counter(
        line["task"]
        for line in procs.ledger_lines()
        if line["run_id"] == run_id and line.get("phase") == "start"
    )


def test_async_tasks_run_in_process_and_a_hung_one_is_cancelled_at_its_timeout() -> None:
    started = time.monotonic()
    results = TaskRunnerBuilder(None).build().execute(hung)
    assert time.monotonic() - started < 5
    assert results["stuck"].status is TaskStatus.FAILURE
    assert "timed out" in (results["stuck"].message or "")
    assert all(results[f"ok{i}"].status is TaskStatus.SUCCESS for i in range(3))
    chain = TaskRunnerBuilder(None).build().execute(asynchronous)
    assert chain["d"].data == {"n": 5, "task": "d"}


def test_async_tasks_run_on_a_concurrent_worker(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, "--concurrency", "4", tasks=SLOT_FLOWS)
    procs.coordinator(redis_url)
    run = Client(redis_url).submit(asynchronous, run_id="async-on-worker")
    results = run.wait(timeout=30)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    assert results["d"].data == {"n": 5, "task": "d"}
    b, c = (next(x for x in procs.ledger_lines() if x["task"] == t and x["phase"] == "start") for t in "bc")
    assert abs(b["at"] - c["at"]) < 0.4, "b and c ran at once on the one worker"


def test_four_slots_run_four_blocking_tasks_at_once_and_rq_sees_them(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, "--concurrency", "4", name="slots4", tasks=SLOT_FLOWS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(four_blocking, params={"block_s": 2.0}, run_id="four-at-once")
    wait_until(lambda: len(_running(store, run.run_id)) == 4, 30, "four tasks running")
    wait_until(lambda: _all_beaten(store, run.run_id) == 4, 10, "a heartbeat for each of the four slots")
    workers = Worker.all(connection=client.connection)
    assert len(workers) == 1, "one RQ worker process"
    # the worker listens on its capability queue of "default" (see rqdag.coordinator.routing)
    started = StartedJobRegistry(worker_queue("default", (SLOT_FLOWS,)), connection=client.connection)
    assert len(started.get_job_ids()) == 4
    results = run.wait(timeout=30)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    lines = [x for x in procs.ledger_lines() if x["run_id"] == run.run_id]
    starts = [x["at"] for x in lines if x["phase"] == "start"]
    ends = [x["at"] for x in lines if x["phase"] == "end"]
    assert len(starts) == 4 and max(starts) < min(ends), "the four ran at the same time"
    assert len({x["pid"] for x in lines}) == 1


def test_sigkill_of_a_concurrent_worker_re_runs_each_lost_attempt_once(redis_url: str, procs: Procs) -> None:
    w1 = procs.worker(redis_url, "--concurrency", "4", name="w1", tasks=SLOT_FLOWS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(in_flight, params={"slow_s": 3}, run_id="killed-slots", heartbeat_timeout_s=1.5)
    wait_until(lambda: len(_running(store, run.run_id)) == 4, 30, "four tasks in flight")
    os.kill(w1.pid, signal.SIGKILL)
    w1.wait()
    procs.worker(redis_url, "--concurrency", "4", name="w2", tasks=SLOT_FLOWS)
    wait_until(lambda: run.status().status == "blocked", 40, "the run to show as blocked")
    results = run.snapshot()
    for i in range(3):
        assert results[f"b{i}"].status is TaskStatus.SUCCESS and results[f"b{i}"].metrics.attempt == 2
    assert results["m"].in_doubt and "outcome unknown" in (results["m"].message or "")
    starts = _starts(procs, run.run_id)
    assert all(starts[f"b{i}"] == 2 for i in range(3)), starts
    assert starts["m"] == 1, "the at-most-once task never ran twice"


def test_a_hung_async_task_is_cancelled_at_its_timeout_while_other_slots_go_on(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url, "--concurrency", "4", tasks=SLOT_FLOWS)
    procs.coordinator(redis_url)
    run = Client(redis_url).submit(hung, params={"nap_s": 2.0}, run_id="hung-slot")
    results = run.wait(timeout=30)
    assert results["stuck"].status is TaskStatus.FAILURE and "timed out" in (results["stuck"].message or "")
    assert all(results[f"ok{i}"].status is TaskStatus.SUCCESS for i in range(3))
    lines = [x for x in procs.ledger_lines() if x["run_id"] == run.run_id]
    assert any(x["task"] == "stuck" and x["phase"] == "cancelled" for x in lines), "cancelled, not left"
    cancelled_at = next(x["at"] for x in lines if x["phase"] == "cancelled")
    ok_ends = [x["at"] for x in lines if x["task"].startswith("ok") and x["phase"] == "end"]
    assert cancelled_at < min(ok_ends), "the hung task ended at its timeout, before the 2 s naps"


def test_sigterm_gives_every_slot_the_grace_then_hands_back(redis_url: str, procs: Procs) -> None:
    w1 = procs.worker(redis_url, "--concurrency", "4", "--shutdown-grace", "0.5", name="w1", tasks=SLOT_FLOWS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(in_flight, params={"slow_s": 5}, run_id="handback-slots", heartbeat_timeout_s=120)
    wait_until(lambda: len(_running(store, run.run_id)) == 4, 30, "four tasks in flight")
    stopped_at = time.monotonic()
    w1.send_signal(signal.SIGTERM)
    w1.wait(timeout=15)
    assert time.monotonic() - stopped_at < 4, "the worker left once the grace period was over"
    procs.worker(redis_url, "--concurrency", "4", name="w2", tasks=SLOT_FLOWS)
    wait_until(lambda: run.status().status == "blocked", 30, "the b tasks done again and m in doubt")
    results = run.snapshot()
    assert all(results[f"b{i}"].metrics.attempt == 2 for i in range(3))
    assert results["m"].in_doubt and "handed the task back" in (results["m"].message or "")
    audit = [f for _, f in client.connection.xrange(RunKeys(run.run_id).events) if f[b"kind"] == b"handback"]
    assert {f[b"task"] for f in audit} == {b"b0", b"b1", b"b2", b"m"}
