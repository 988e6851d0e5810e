"""Distributed runs: real redis-server, real RQ workers and coordinators in subprocesses."""

from __future__ import annotations

import os
import signal

import pytest
import redis

from rqdag import TaskResult, TaskRunnerBuilder, TaskStatus
from rqdag.client import Client
from rqdag.errors import RunExistsError
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import fifty, recoverable
from tests.support.ledger import successes_ran_once
from tests.support.processes import Procs, runs_ended_here
from tests.support.wait import wait_until


def test_fifty_task_dag_on_two_workers_runs_each_task_once(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    procs.coordinator(redis_url)
    run = Client(redis_url).submit(fifty, params={"sleep_s": 0.02}, run_id="fifty-1")
    results = run.wait(timeout=60)
    assert run.status().status == "succeeded"
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    assert len(results) == 50
    lines = procs.ledger_lines()
    assert successes_ran_once(lines, list(results)) == {}
    assert len({line["pid"] for line in lines}) == 2, "both workers took tasks"
    # data flows along edges: final sums everything upstream
    assert results["final"].data["n"] > 23


def test_coordinator_killed_mid_run_is_replaced_without_rerunning_successes(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    first = procs.coordinator(redis_url, "--lease-ttl", "2", name="c1")
    client = Client(redis_url)
    run = client.submit(fifty, params={"sleep_s": 0.15}, run_id="killed-coord")
    store = RunStore(client.connection)

    def some_done_some_in_flight() -> bool:
        state = store.read_state(run.run_id)
        return 5 <= len(state.results) < 40 and bool(state.dispatch)

    wait_until(some_done_some_in_flight, 30, "a run half done with tasks in flight")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = store.read_state(run.run_id).results
    procs.coordinator(redis_url, "--lease-ttl", "2", name="c2")
    results = run.wait(timeout=90)
    assert run.status().status == "succeeded"
    assert len(results) == 50 and all(r.status is TaskStatus.SUCCESS for r in results.values())
    lines = procs.ledger_lines()
    assert successes_ran_once(lines, list(results)) == {}
    for name, result in before.items():
        assert results[name] == result, f"{name} changed after the coordinator was replaced"


def test_resume_reruns_only_failed_and_skipped(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(recoverable, run_id="rec-1")
    first = run.wait(timeout=30)
    assert run.status().status == "failed"
    assert first["a"].status is TaskStatus.SUCCESS
    assert first["b"].status is TaskStatus.FAILURE
    assert first["c"].status is TaskStatus.SKIPPED
    assert first["d"].status is TaskStatus.SUCCESS and first["d"].metrics.attempt == 2
    # fix the cause: a param; resume keeps a and d, runs b and c again
    client.connection.hset("rqdag:run:{rec-1}:meta", "params", b'{"fixed": true}')
    client.resume("rec-1")
    second = run.wait(timeout=30)
    assert run.status().status == "succeeded"
    assert run.status().epoch == 2
    assert second["a"] == first["a"] and second["d"] == first["d"]
    runs_by_task: dict[str, int] = {}
    for line in procs.ledger_lines():
        runs_by_task[line["task"]] = runs_by_task.get(line["task"], 0) + 1
    assert runs_by_task == {"a": 1, "b": 2, "c": 1, "d": 2}


def test_cancel_stops_a_run(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(fifty, params={"sleep_s": 0.3}, run_id="to-cancel")
    wait_until(lambda: len(run.snapshot()) >= 2, 30, "two tasks done")
    run.cancel("operator said stop")
    results = run.wait(timeout=30)
    assert run.status().status == "cancelled"
    statuses = {r.status for r in results.values()}
    assert TaskStatus.CANCELLED in statuses
    assert len(results) == 50


def test_submitting_an_existing_run_id_is_refused(redis_url: str) -> None:
    client = Client(redis_url)
    client.submit(recoverable, run_id="dup")
    with pytest.raises(RunExistsError, match="run 'dup' exists already"):
        client.submit(recoverable, run_id="dup")


def test_redis_password_is_honoured(fresh_redis, procs: Procs) -> None:  # type: ignore[no-untyped-def]
    server = fresh_redis(password="s3cret")
    url = server.url
    assert ":s3cret@" in url
    procs.worker(url)
    procs.coordinator(url)
    run = Client(url).submit(recoverable, params={"fixed": True}, run_id="pw")
    assert {r.status for r in run.wait(timeout=30).values()} == {TaskStatus.SUCCESS}
    with redis.Redis.from_url(url.replace(":s3cret@", "")) as anonymous:
        try:
            anonymous.ping()
        except redis.AuthenticationError:
            pass
        else:
            raise AssertionError("server accepted a client without the password")


def test_two_coordinators_share_many_runs(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, name="w1")
    procs.worker(redis_url, name="w2")
    procs.coordinator(redis_url, name="c1")
    procs.coordinator(redis_url, name="c2")
    client = Client(redis_url)
    runs = [client.submit(recoverable, params={"fixed": True}, run_id=f"many-{i}") for i in range(8)]
    for run in runs:
        run.wait(timeout=60)
        assert run.status().status == "succeeded"

    def finished_by(name: str) -> set[str]:
        return runs_ended_here(procs.log(name))

    # a coordinator logs the outcome just after recording it: give the last line a moment
    expected = {r.run_id for r in runs}
    wait_until(lambda: finished_by("c1") | finished_by("c2") == expected, 10, "every outcome logged")
    owners, others = finished_by("c1"), finished_by("c2")
    assert not owners & others, "each run was finished by exactly one coordinator"
    starts: dict[tuple[str, str], int] = {}
    for line in procs.ledger_lines():
        key = (line["run_id"], line["task"])
        starts[key] = starts.get(key, 0) + 1
    assert all(n == 1 for (run_id, task), n in starts.items() if task != "d")


def test_task_runner_builder_with_redis_coordinates_inline(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    seed = {"a": TaskResult.success({"n": 41})}
    runner = TaskRunnerBuilder().with_redis(redis_url).with_snapshot(seed).with_run_id("inline").build()
    results = runner.execute(recoverable, params={"fixed": True})
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    assert results["a"].data == {"n": 41}, "a success from the snapshot is kept, not run"
    assert results["c"].data["n"] == 1 + 0  # c's input b returned a string, so only itself counts
    assert "a" not in {line["task"] for line in procs.ledger_lines()}
    assert runner.snapshot() == results
    assert Client(redis_url).run("inline").status().status == "succeeded"
