"""A coordinator taking a large run over does not block Redis for its other clients.

The run (200,000 tasks, half of them succeeded, nothing in flight: its coordinator
is gone) is written straight into Redis. While a new coordinator loads it, up to
its first dispatch, another process PINGs Redis every 2 ms. Redis answers BUSY
once a script has run for ``lua-time-limit`` ms (set to 100 here), so a takeover
that read the run in one script would show as BUSY replies and as seconds of
stalled PINGs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue

from rqdag import Task, TaskResult, TaskStatus, Workflow
from rqdag.coordinator.driver import RunDriver
from rqdag.local.redis_server import RedisServer
from rqdag.shared.model.result import TaskMetrics
from rqdag.shared.store.runs import RunStore
from tests.support import REPO
from tests.support.processes import FLOWS, rqdag_env
from tests.support.workers import register_stand_in

TASKS = 200_000
PING_INTERVAL_MS = 2
P99_LIMIT_MS = 50.0


def half_done_run(client: redis.Redis, run_id: str) -> None:
    """A ``root -> TASKS-1`` run whose root and first half succeeded, with no coordinator."""
    names = [f"t{i:06d}" for i in range(TASKS - 1)]
    tasks = [Task("root", "tests.integration.flows:step")]
    tasks += [Task(n, "tests.integration.flows:step", depends_on=("root",)) for n in names]
    now = time.time()
    metrics = TaskMetrics(started_at=now - 2, finished_at=now - 1, duration_s=1.0, attempt=1, worker="w:1")
    done = {
        n: TaskResult(TaskStatus.SUCCESS, data={"rows": 7, "path": f"s3://b/{n}.parquet"}, metrics=metrics)
        for n in ["root", *names[: TASKS // 2 - 1]]
    }
    RunStore(client).create_run(Workflow("big", tasks), run_id=run_id, snapshot=done)


def queued(client: redis.Redis, queue_key: str) -> int:
    """Jobs in the queue; 0 while Redis answers BUSY (the pinger counts those)."""
    try:
        return int(client.llen(queue_key))
    except redis.ResponseError as exc:
        if str(exc).startswith("BUSY"):
            return 0
        raise


def take_over_while_pinging(client: redis.Redis, url: str, run_id: str) -> tuple[float, dict[str, Any]]:
    """Seconds from a new driver's start to its first job in the queue, and the pinger's report."""
    # a registered worker for the run's tasks, so that the takeover routes their jobs (to its queue)
    queue_key = Queue(register_stand_in(client, (FLOWS,)), connection=client).key
    stop = threading.Event()
    thread = threading.Thread(target=RunDriver(client, run_id, "taker", stop=stop).drive, daemon=True)
    with subprocess.Popen(
        [sys.executable, "-m", "tests.integration.pinger", url, str(PING_INTERVAL_MS)],
        cwd=REPO,
        env=rqdag_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as pinger:
        assert pinger.stdout is not None and pinger.stdin is not None
        try:
            assert pinger.stdout.readline().strip() == "ready"
            time.sleep(0.2)
            started = time.monotonic()
            thread.start()
            while not queued(client, queue_key) and time.monotonic() - started < 60:
                time.sleep(0.005)
            took = time.monotonic() - started
            pinger.stdin.write("stop\n")
            pinger.stdin.flush()
            report: dict[str, Any] = json.loads(pinger.stdout.readline())
        finally:
            stop.set()
            if pinger.poll() is None:
                pinger.kill()
            thread.join(timeout=30)
    return took, report


def test_a_takeover_of_200k_tasks_keeps_redis_answering_others(
    fresh_redis: Callable[..., RedisServer],
) -> None:
    server = fresh_redis(appendonly=False)
    with redis.Redis.from_url(server.url) as client:
        client.config_set("lua-time-limit", 100)
        half_done_run(client, "big")
        took, report = take_over_while_pinging(client, server.url, "big")
        queue = Queue(register_stand_in(client, (FLOWS,)), connection=client)
        assert client.llen(queue.key), "the takeover dispatched nothing"
    latencies = sorted(report["latencies_ms"])
    p99 = latencies[int(len(latencies) * 0.99)]
    summary = f"takeover {took:.2f}s, {len(latencies)} PINGs, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
    print(summary)
    assert report["busy"] == 0, f"Redis answered BUSY {report['busy']} times ({summary})"
    assert p99 < P99_LIMIT_MS, summary
