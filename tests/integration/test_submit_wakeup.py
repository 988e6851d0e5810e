"""A running ``rqdag coordinator`` learns of a new run at once, not at its next poll.

The coordinators here poll only every 30 s, so a poll cannot be what finds a run:
every run must end within a small fraction of that.
"""

from __future__ import annotations

import time

from rqdag import Client, Task, Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import step
from tests.support.cli import run_cli
from tests.support.processes import Procs, runs_ended_here
from tests.support.wait import wait_until

LONG_POLL_S = "30"
FAST_S = 3.0  # a run of one quick task, submit to result, on a loaded test machine
CLI_START_S = 3.0

one_task = Workflow("one-task", [Task("only", step)])


def started(procs: Procs, *names: str) -> None:
    """Wait until each coordinator logged its start (it is then blocked on the submissions stream)."""
    wait_until(lambda: all(" started" in procs.log(n) for n in names), 30, "coordinators started")


def test_a_submitted_run_wakes_the_coordinator_at_once(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url, "--poll-interval", LONG_POLL_S)
    started(procs, "coordinator")
    client = Client(redis_url)
    for i in range(5):
        t0 = time.monotonic()
        results = client.submit(one_task, run_id=f"fast-{i}").wait(timeout=20)
        elapsed = time.monotonic() - t0
        assert results["only"].status == "success"
        assert elapsed < FAST_S, f"run {i} took {elapsed:.2f}s: the coordinator waited for a poll"
    assert client.connection.xlen(keys.SUBMISSIONS) == 5


def test_a_resumed_run_wakes_the_coordinator_too(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url, "--poll-interval", LONG_POLL_S)
    started(procs, "coordinator")
    client = Client(redis_url)
    client.submit(one_task, run_id="again").wait(timeout=20)
    # the driver lets go of the run just after recording its outcome (and logs it then)
    wait_until(lambda: "run 'again' succeeded" in procs.log("coordinator"), 10, "the first epoch's end")
    t0 = time.monotonic()
    client.resume("again", rerun=["only"])
    results = client.run("again").wait(timeout=20)
    assert time.monotonic() - t0 < FAST_S
    assert client.run("again").status().epoch == 2
    assert results["only"].status == "success"
    assert [line["run_id"] for line in procs.ledger_lines()] == ["again", "again"]  # it ran again


def test_every_coordinator_wakes_and_one_drives_each_run(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    procs.coordinator(redis_url, "--poll-interval", LONG_POLL_S, name="c1")
    procs.coordinator(redis_url, "--poll-interval", LONG_POLL_S, name="c2")
    started(procs, "c1", "c2")
    client = Client(redis_url)
    t0 = time.monotonic()
    runs = [client.submit(one_task, run_id=f"shared-{i}") for i in range(6)]
    for run in runs:
        assert run.wait(timeout=20)["only"].status == "success"
    assert time.monotonic() - t0 < 2 * FAST_S

    def finished_by(name: str) -> set[str]:
        return runs_ended_here(procs.log(name))

    expected = {r.run_id for r in runs}
    wait_until(lambda: finished_by("c1") | finished_by("c2") == expected, 10, "every outcome logged")
    assert not finished_by("c1") & finished_by("c2"), "each run was driven by exactly one coordinator"
    started_once = [(line["run_id"], line["task"]) for line in procs.ledger_lines()]
    assert sorted(started_once) == sorted(set(started_once))


def test_a_run_without_its_nudge_is_still_found_by_the_poll(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url, "--poll-interval", "0.5")
    started(procs, "coordinator")
    client = Client(redis_url)
    RunStore(client.connection).create_run(one_task, run_id="unannounced")  # no submissions entry
    assert client.run("unannounced").wait(timeout=20)["only"].status == "success"
    assert client.connection.xlen(keys.SUBMISSIONS) == 0


def test_a_run_resumed_from_the_cli_wakes_the_coordinator(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url, "--poll-interval", LONG_POLL_S)
    started(procs, "coordinator")
    client = Client(redis_url)
    client.submit(one_task, run_id="again-cli").wait(timeout=20)
    wait_until(lambda: "run 'again-cli' succeeded" in procs.log("coordinator"), 10, "the first epoch's end")
    t0 = time.monotonic()
    resumed = run_cli("resume", "again-cli", "--rerun", "only", "--redis", redis_url)
    assert resumed.returncode == 0, resumed.stderr
    results = client.run("again-cli").wait(timeout=20)
    assert time.monotonic() - t0 < FAST_S + CLI_START_S  # the resume command itself starts a Python
    assert client.run("again-cli").status().epoch == 2 and results["only"].status == "success"
    assert [line["run_id"] for line in procs.ledger_lines()] == ["again-cli", "again-cli"]


def test_runs_claimed_by_the_loops_while_the_service_scans_are_each_driven_once(
    redis_url: str, procs: Procs
) -> None:
    # A scan every 20 ms races the loops' claims of the runs they read on the submissions stream.
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    procs.coordinator(redis_url, "--poll-interval", "0.02")
    started(procs, "coordinator")
    client = Client(redis_url)
    runs = [client.submit(one_task, run_id=f"raced-{i}") for i in range(60)]
    for run in runs:
        assert run.wait(timeout=30)["only"].status == "success"
    ended = [f"run '{r.run_id}' succeeded" for r in runs]
    wait_until(lambda: all(line in procs.log("coordinator") for line in ended), 10, "every outcome logged")
    log = procs.log("coordinator")
    for run in runs:
        assert log.count(f"run '{run.run_id}': coordinator") == 1, f"{run.run_id} driven more than once"
        assert log.count(f"run '{run.run_id}' succeeded") == 1
    assert "drives it again" not in log
    started_once = [(line["run_id"], line["task"]) for line in procs.ledger_lines()]
    assert sorted(started_once) == sorted((r.run_id, "only") for r in runs)


def test_a_handle_fresh_from_submit_hears_the_end_without_a_poll(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url, "--poll-interval", LONG_POLL_S)
    started(procs, "coordinator")
    client = Client(redis_url)
    t0 = time.monotonic()
    results = client.submit(one_task, run_id="heard").wait(timeout=20, poll_s=30)  # no status poll
    assert time.monotonic() - t0 < FAST_S and results["only"].status == "success"
    # a run that ended before its fresh handle waits: the events read from the start say so
    late = client.submit(one_task, run_id="ended-first")
    wait_until(lambda: late.status().finished, 20, "the run to end")
    t0 = time.monotonic()
    assert late.wait(timeout=20, poll_s=30)["only"].status == "success"
    assert time.monotonic() - t0 < 1.0, "the fresh handle waited for a poll"
