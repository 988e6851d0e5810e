"""A worker killed after RQ handed it a job but before rqdag's start step ran.

The chaos test hits this window now and then (a SIGKILL between the worker's
dequeue and the ``start_task`` script): the attempt is still ``queued`` in the
run's dispatch hash while its RQ job sits in the dead worker's hands, so only
the coordinator's watchdog can tell that it will never start. These tests open
the window on purpose, both ways a worker can die in it:

- right after the dequeue (``BLMOVE`` into RQ's intermediate list);
- after RQ marked the job started, inside the job function, before rqdag's start.

A run must not wait forever: the attempt never started (its token was never
claimed), so the task is dispatched again, at-most-once or not, and runs once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rqdag import Task, TaskStatus, Workflow
from rqdag.client import Client
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store.runs import RunStore
from tests.chaos.chaos_flow import LEDGER_ENV, work
from tests.chaos.cluster import TASKS_MODULE
from tests.support.processes import Procs
from tests.support.wait import poll_until
from tests.support.workers import register_stand_in

FINISH_WITHIN_S = 20.0  # the heartbeat limit is 2 s and the lease TTL 2 s
SETTLED = ("succeeded", "failed", "cancelled", "error", "blocked")


@pytest.fixture
def procs_env(tmp_path: Path) -> dict[str, str]:
    """Every child ``procs`` starts names the chaos tasks' ledger too (the same file)."""
    return {LEDGER_ENV: str(tmp_path / "ledger.jsonl")}


def die_after_dequeue(url: str, procs: Procs, client: Client) -> None:
    """What a worker's dequeue does (RQ's ``Queue.lmove``), then the worker is gone."""
    conn = client.connection
    # a worker registers (the coordinator routes jobs only to live, capable workers), then dequeues
    queue = register_stand_in(conn, (TASKS_MODULE,), name="dies-after-dequeue")
    moved = poll_until(lambda: conn.lmove(f"rq:queue:{queue}", f"rq:queue:{queue}:intermediate"), 15)
    assert moved, "the coordinator never enqueued the job"


def die_in_the_job(url: str, procs: Procs, client: Client) -> None:
    """A real worker that SIGKILLs itself where the job function begins, before rqdag's start."""
    code = (
        "import os, signal\n"
        "import rqdag.worker.rq_classes as w\n"
        "from rqdag.worker.start import start_worker\n"
        "w.run_task = lambda **kwargs: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"start_worker({url!r}, tasks=[{TASKS_MODULE!r}], heartbeat_interval=0.5, name='dies-in-job')\n"
    )
    dying = procs.python(code, name="dying-worker")
    assert dying.wait(timeout=30) == -9


@pytest.mark.chaos
@pytest.mark.parametrize("at_most_once", [False, True], ids=["at-least-once", "at-most-once"])
@pytest.mark.parametrize("death", [die_after_dequeue, die_in_the_job], ids=lambda f: f.__name__)
def test_a_worker_lost_before_the_start_step_does_not_stall_the_run(
    fresh_redis: Callable[..., RedisServer],
    procs: Procs,
    death: Callable[[str, Procs, Client], None],
    at_most_once: bool,
) -> None:
    server = fresh_redis()
    procs.coordinator(server.url, "--lease-ttl", "2")
    client = Client(server.url)
    try:
        flow = Workflow("lost-dequeue", [Task("a", work, at_most_once=at_most_once)])
        run = client.submit(
            flow, params={"tasks": {"a": {"sleep_s": 0.0}}}, run_id="lost", heartbeat_timeout_s=2
        )
        death(server.url, procs, client)
        procs.worker(server.url, tasks=TASKS_MODULE)
        poll_until(lambda: run.status().status in SETTLED, FINISH_WITHIN_S, step=0.1)
        status = run.status().status
        entry = RunStore(client.connection).read_state(run.run_id).dispatch.get("a")
        assert status in SETTLED, (
            f"the run is still {status!r} {FINISH_WITHIN_S:g}s after its worker died before the start step; "
            f"task 'a' stays in the dispatch hash as {entry}"
        )
        result = run.snapshot()["a"]
        assert status == "succeeded" and result.status is TaskStatus.SUCCESS, (status, result)
        starts = [line for line in procs.ledger_lines() if line["phase"] == "start"]
        assert [line["attempt"] for line in starts] == [result.metrics.attempt], starts
    finally:
        client.connection.close()
