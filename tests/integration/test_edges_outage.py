"""A Redis outage under a real coordinator process: one log line when it starts, one when it ends,
and the runs it drove go on at once once Redis is back."""

from __future__ import annotations

import time
from collections.abc import Callable

from rqdag import Client, Task, TaskStatus, Workflow
from rqdag.local.redis_server import RedisServer
from tests.integration.flows import step
from tests.support.processes import Procs
from tests.support.wait import wait_until

single = Workflow("single", [Task("only", step)])
OUTAGE_S = 3.0


def _outage(server: RedisServer, seconds: float = OUTAGE_S) -> None:
    """Stop Redis for ``seconds`` (a clean stop: the AOF keeps every key), then start it again."""
    server.stop()
    time.sleep(seconds)
    server.start()


def _warnings(log: str, text: str) -> list[str]:
    return [line for line in log.splitlines() if "WARNING" in line and text in line]


def test_a_coordinator_logs_an_outage_once_when_it_starts_and_once_when_it_ends(
    fresh_redis: Callable[..., RedisServer], procs: Procs
) -> None:
    server = fresh_redis()
    run = Client(server.url).submit(single, run_id="outage-log")  # no worker: its driver waits on it
    procs.coordinator(server.url)
    wait_until(lambda: run.status().status == "running", 20, "the coordinator to drive the run")
    _outage(server)
    wait_until(lambda: "Redis reachable again" in procs.log("coordinator"), 20, "the end of the outage")
    time.sleep(1.5)  # a poll or two more: a repeat would show now
    log = procs.log("coordinator")
    assert len(_warnings(log, "Redis unreachable")) == 1, log
    ended = _warnings(log, "Redis reachable again after")
    assert len(ended) == 1, log
    lasted = float(ended[0].split("again after ")[1].split(" s ")[0])
    assert OUTAGE_S - 1.5 <= lasted <= OUTAGE_S + 5, ended[0]
    assert not _warnings(log, "run 'outage-log': Redis error"), log


def test_a_run_stopped_by_an_outage_goes_on_without_waiting_for_its_lease(
    fresh_redis: Callable[..., RedisServer], procs: Procs
) -> None:
    server = fresh_redis()
    run = Client(server.url).submit(single, run_id="outage-lease", params={"sleep_s": 0})
    procs.coordinator(server.url, "--lease-ttl", "60")
    wait_until(lambda: run.status().status == "running", 20, "the coordinator to drive the run")
    _outage(server)
    procs.worker(server.url)  # the queued job survived in the AOF; a worker runs it now
    results = run.wait(timeout=20)  # not the 60 s lease its stopped driver left behind
    assert results["only"].status is TaskStatus.SUCCESS
    assert [line["task"] for line in procs.ledger_lines()] == ["only"]
