"""Waits and sleeps with a real coordinator service and a real worker, signals through the CLI."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import redis

from rqdag import Client, TaskStatus
from rqdag.errors import RqdagError
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from tests.integration.wait_flows import approval_flow, sleep_flow
from tests.support.cli import run_cli
from tests.support.processes import Procs
from tests.support.runs import wait_status
from tests.support.wait import wait_for, wait_until

TASKS = "tests.integration.wait_flows"


def start(procs: Procs, url: str, *extra: str, name: str = "coordinator") -> None:
    procs.worker(url, tasks=TASKS)
    procs.coordinator(url, *extra, name=name)


def status_line(url: str, run_id: str) -> str | None:
    out = run_cli("status", run_id, "--redis", url).stdout
    return out if "waiting for signal" in out else None


def has_result(client: Client, run_id: str, task: str) -> bool:
    return task in client.run(run_id).snapshot()


def test_a_wait_signalled_through_the_cli_completes_with_the_signals_data(
    redis_url: str, procs: Procs
) -> None:
    start(procs, redis_url)
    client = Client(redis_url)
    run = client.submit(approval_flow(), run_id="approve-1")
    wait_until(lambda: has_result(client, run.run_id, "prepare"), 30, "prepare done")
    status = run_cli("status", "approve-1", "--redis", redis_url).stdout
    assert "waiting for signal" in status, status
    time.sleep(0.5)
    assert "approval" not in run.snapshot()  # no signal, no result
    sent = run_cli(
        "signal", "approve-1", "approval", "--data", '{"by": "ops"}', "--redis", redis_url, "--json"
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["signal"]["data"] == {"by": "ops"}
    results = run.wait(timeout=30)
    assert run.status().status == "succeeded"
    assert results["approval"].data == {"by": "ops"}
    assert results["ship"].data == {"approval": {"by": "ops"}}
    [entry] = [e for e in read_audit(RunStore(client.connection), "approve-1") if e["kind"] == "signal"]
    assert entry["task"] == "approval" and entry["data"] == {"by": "ops"} and entry["who"] and entry["at"]
    assert [line["task"] for line in procs.ledger_lines()] == ["prepare", "ship"]  # no worker ran the wait


def test_a_signal_sent_before_the_wait_is_reached_is_used_when_it_is(redis_url: str, procs: Procs) -> None:
    start(procs, redis_url)
    client = Client(redis_url)
    run = client.submit(approval_flow(), run_id="early-1", params={"sleep_s": 1.5})
    client.signal("early-1", "approval", data="yes", who="tester")
    assert "prepare" not in run.snapshot()
    results = run.wait(timeout=30)
    assert results["approval"].status is TaskStatus.SUCCESS and results["approval"].data == "yes"
    assert results["approval"].message == "signalled by tester"


def test_a_wait_fails_at_its_deadline_and_its_dependents_are_skipped(redis_url: str, procs: Procs) -> None:
    start(procs, redis_url)
    run = Client(redis_url).submit(approval_flow(timeout_s=1), run_id="late-1")
    results = run.wait(timeout=30)
    assert run.status().status == "failed"
    assert results["approval"].status is TaskStatus.FAILURE
    assert results["approval"].message == "no signal within 1s"
    assert results["ship"].status is TaskStatus.SKIPPED


def test_a_failure_signal_and_the_signals_that_are_errors(redis_url: str, procs: Procs) -> None:
    start(procs, redis_url)
    client = Client(redis_url)
    run = client.submit(approval_flow(), run_id="refused-1", params={"sleep_s": 3})
    client.signal("refused-1", "approval", status="failure", reason="no budget")
    with pytest.raises(RqdagError, match="wait 'approval' was signalled already"):
        client.signal("refused-1", "approval", data=1)
    wrong = run_cli("signal", "refused-1", "prepare", "--redis", redis_url)
    assert wrong.returncode == 2
    assert "task 'prepare' is not a wait (it is a task)" in wrong.stderr
    results = run.wait(timeout=30)
    assert results["approval"].status is TaskStatus.FAILURE
    assert "no budget" in (results["approval"].message or "")
    assert results["ship"].status is TaskStatus.SKIPPED
    late = run_cli("signal", "refused-1", "approval", "--status", "failure", "--redis", redis_url)
    assert late.returncode == 2 and "has finished already (failure)" in late.stderr


def test_a_sleep_survives_a_coordinator_kill_without_starting_its_timer_over(
    redis_url: str, redis_conn: redis.Redis, procs: Procs
) -> None:
    procs.worker(redis_url, tasks=TASKS)
    first = procs.coordinator(redis_url, "--lease-ttl", "1", name="c1")
    run = Client(redis_url).submit(sleep_flow(4), run_id="nap-1")
    timers = RunKeys("nap-1").timers
    fires_at = float(wait_for(lambda: redis_conn.hget(timers, "1:cool_down"), 30, "the sleep's timer"))
    wait_until(lambda: redis_conn.time()[0] >= fires_at - 3, 5, "a second into the sleep")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    procs.coordinator(redis_url, "--lease-ttl", "1", name="c2")
    wait_status(run, ["succeeded"], timeout=30)
    results = run.snapshot()
    assert float(redis_conn.hget(timers, "1:cool_down") or 0) == fires_at  # the restart kept it
    finished = results["cool_down"].metrics.finished_at
    assert finished is not None and fires_at <= finished + 0.05
    # started over, it would end 4 s after c2 took over, at least a second past fires_at
    assert finished < fires_at + 1.0, (finished, fires_at)
    assert results["ship"].status is TaskStatus.SUCCESS
