"""A dispatch entry overwritten with garbage under a live coordinator: reported, set aside, the run goes on.

The rule: an attempt whose entry cannot be read can no longer start, beat or
finish (each of those scripts refuses an unreadable entry), so the coordinator
voids it. If it never started it is sent again, at-most-once or not; if it may
have started it counts as lost: an at-least-once task runs again, an
at-most-once task is never run again (its outcome is unknown: the run blocks).
"""

from __future__ import annotations

import time
from pathlib import Path

from rqdag import TaskStatus, Workflow
from rqdag.client import Client, RunHandle
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.runs import RunStore
from tests.integration.gated import held_at_most_once, held_once, starts
from tests.support.processes import Procs
from tests.support.wait import wait_until
from tests.support.workers import register_stand_in

GARBAGE = b"\x00garbage"
REPORTED_WITHIN_S = 8.0  # the watchdog reads the dispatch hash every 5 s at the default limit


def _started(procs: Procs, task: str) -> bool:
    return starts(procs.ledger_lines())[task] >= 1


def _reported(procs: Procs, run_id: str, task: str) -> bool:
    return any(
        f"run '{run_id}'" in line and f"dispatch field '{task}'" in line and f"task '{task}'" in line
        for line in procs.log("coordinator").splitlines()
    )


def _spoil(client: Client, run: RunHandle, task: str) -> None:
    client.connection.hset(RunKeys(run.run_id).dispatch, task, GARBAGE)


def _wait_reported(procs: Procs, run: RunHandle, task: str) -> None:
    wait_until(lambda: _reported(procs, run.run_id, task), REPORTED_WITHIN_S, "the garbage reported")


def _spoiled_while_running(
    redis_url: str, procs: Procs, flow: Workflow, gate: Path, run_id: str
) -> tuple[Client, RunHandle]:
    """A run of ``flow`` whose task ``held`` has started (and waits for ``gate``) when its
    dispatch entry is overwritten with garbage, once the coordinator has reported it."""
    procs.worker(redis_url, tasks="tests.integration.gated")
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(flow, params={"gate": str(gate)}, run_id=run_id)
    wait_until(lambda: _started(procs, "held"), 20, "held to start")
    _spoil(client, run, "held")
    _wait_reported(procs, run, "held")
    return client, run


def test_garbage_over_a_running_attempt_is_reported_and_the_task_runs_again(
    redis_url: str, procs: Procs, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    _, run = _spoiled_while_running(redis_url, procs, held_once, gate, "garbage-running")
    assert "may have started" in procs.log("coordinator")
    gate.touch()
    results = run.wait(timeout=30)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    assert run.status().status == "succeeded"
    counts = starts(procs.ledger_lines())
    assert counts["held"] == 2, "the voided attempt ran once more, no more"
    assert counts["after"] == 1


def test_garbage_over_a_running_at_most_once_attempt_blocks_the_run_and_never_reruns_it(
    redis_url: str, procs: Procs, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    client, run = _spoiled_while_running(redis_url, procs, held_at_most_once, gate, "garbage-at-most-once")
    wait_until(lambda: run.status().status == "blocked", 10, "the run to block on the in-doubt task")
    held = run.snapshot()["held"]
    assert held.status is TaskStatus.FAILURE and held.in_doubt
    assert "outcome unknown" in (held.message or "") and "unreadable" in (held.message or "")
    gate.touch()
    time.sleep(2)  # time enough for a wrong second start to show in the ledger
    assert starts(procs.ledger_lines())["held"] == 1, "an at-most-once task never runs twice"
    assert "after" not in run.snapshot()
    assert RunStore(client.connection).read_state(run.run_id).problems == [], "the garbage is gone"


def test_garbage_over_an_attempt_not_yet_started_sends_it_again(
    redis_url: str, procs: Procs, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    procs.coordinator(redis_url)  # no worker yet: the attempt stays queued
    client = Client(redis_url)
    register_stand_in(client.connection, ("tests.integration.gated",))  # in the queue of its workers
    run = client.submit(held_at_most_once, params={"gate": str(gate)}, run_id="garbage-queued")
    store = RunStore(client.connection)
    wait_until(lambda: "held" in store.read_state(run.run_id).dispatch, 20, "held to be dispatched")
    _spoil(client, run, "held")
    _wait_reported(procs, run, "held")
    assert "never started: it is sent again" in procs.log("coordinator")
    procs.worker(redis_url, tasks="tests.integration.gated")
    results = run.wait(timeout=30)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    assert results["held"].metrics.attempt == 2, "the voided attempt 1 never ran; attempt 2 did"
    assert starts(procs.ledger_lines())["held"] == 1
    assert "not the current attempt" in procs.log("worker"), "the old job was refused"


def test_garbage_found_by_a_takeover_never_reruns_an_at_most_once_task(
    redis_url: str, procs: Procs, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    procs.worker(redis_url, tasks="tests.integration.gated")
    first = procs.coordinator(redis_url, name="first")
    client = Client(redis_url)
    run = client.submit(held_at_most_once, params={"gate": str(gate)}, run_id="garbage-takeover")
    wait_until(lambda: _started(procs, "held"), 20, "held to start")
    first.terminate()
    first.wait(timeout=15)
    _spoil(client, run, "held")
    procs.coordinator(redis_url)
    wait_until(lambda: run.status().status == "blocked", 20, "the run to block on the in-doubt task")
    assert run.snapshot()["held"].in_doubt
    gate.touch()
    time.sleep(2)
    assert starts(procs.ledger_lines())["held"] == 1, "the takeover did not run it again"
    assert "dispatch field 'held'" in procs.log("coordinator")
