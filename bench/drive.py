"""One measured run on each side, stopped at a time bound.

rqdag: submit the workflow and drive it with an in-process coordinator
(:class:`~rqdag.coordinator.driver.RunDriver` in a thread of the bench process),
timed from before ``submit`` until ``drive()`` returns. Raw RQ: ``enqueue_many``
from the bench process, timed until RQ's finished-job registry holds every job
(polled every few milliseconds by a separate client).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue
from rq.queue import EnqueueData
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer

from rqdag.client import Client
from rqdag.coordinator.driver import RunDriver
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store.keys import RunKeys

POLL_S = 0.005
STOP_WAIT_S = 30.0
OWNER = f"bench:{os.getpid()}"


class BenchError(RuntimeError):
    """A measured run went wrong (a failure, not a slow run)."""


@dataclass(frozen=True)
class Timing:
    """One measured run: wall time, whether it finished, how far it got, bench-side CPU."""

    seconds: float
    finished: bool
    done: int
    total: int
    cpu_s: float


def run_rqdag(
    client: Client,
    workflow: Workflow,
    run_id: str,
    bound_s: float,
    params: dict[str, Any] | None = None,
) -> Timing:
    """Submit ``workflow`` as ``run_id`` and drive it here until it ends (or ``bound_s`` passes)."""
    stop = threading.Event()
    box: dict[str, Any] = {}

    def drive() -> None:
        cpu0 = time.thread_time()
        t0 = time.perf_counter()
        try:
            client.submit(workflow, run_id=run_id, params=params)
            box["status"] = RunDriver(client.connection, run_id, OWNER, stop=stop).drive()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        box["seconds"] = time.perf_counter() - t0
        box["cpu"] = time.thread_time() - cpu0

    thread = threading.Thread(target=drive, name=f"bench-drive-{run_id}", daemon=True)
    thread.start()
    thread.join(bound_s)
    stopped = thread.is_alive()
    if stopped:
        stop.set()
        thread.join(STOP_WAIT_S)
    if "error" in box:
        raise BenchError(f"run {run_id}: {box['error']!r}") from box["error"]
    total = len(workflow)
    if stopped:
        done = int(client.connection.hlen(RunKeys(run_id).results))
        return Timing(bound_s, False, done, total, float(box.get("cpu", 0.0)))
    if box.get("status") != "succeeded":
        raise BenchError(f"run {run_id} ended {box.get('status')!r}, not 'succeeded'")
    return Timing(box["seconds"], True, total, total, box["cpu"])


def raw_queue(connection: redis.Redis, name: str) -> Queue:
    """An RQ queue with the JSON serializer (the one rqdag uses)."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def run_raw(queue: Queue, datas: list[EnqueueData], poller: redis.Redis, bound_s: float) -> Timing:
    """``enqueue_many(datas)``, then wait until RQ counts them all finished (or ``bound_s`` passes)."""
    finished_key = FinishedJobRegistry(queue=queue).key
    failed_key = FailedJobRegistry(queue=queue).key
    total = len(datas)
    cpu0 = time.thread_time()
    t0 = time.perf_counter()
    queue.enqueue_many(datas)
    while True:
        with poller.pipeline(transaction=False) as pipe:
            pipe.zcard(finished_key)
            pipe.zcard(failed_key)
            done, failed = pipe.execute()
        elapsed = time.perf_counter() - t0
        if done >= total:
            return Timing(elapsed, True, total, total, time.thread_time() - cpu0)
        if failed:
            raise BenchError(f"{failed} raw RQ jobs failed (see the workers' logs)")
        if elapsed > bound_s:
            return Timing(bound_s, False, int(done), total, time.thread_time() - cpu0)
        time.sleep(POLL_S)
