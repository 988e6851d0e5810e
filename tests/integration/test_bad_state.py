"""Bad state in Redis and changed code across a resume: reported clearly, never crashed on."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from rqdag import Retry, TaskStatus, Workflow
from rqdag.client import Client
from rqdag.errors import DecodeError
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.resume import resume_run
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import recoverable, step
from tests.support.processes import FLOWS, Procs
from tests.support.wait import wait_until
from tests.support.workers import register_stand_in


def test_definition_from_a_newer_version_is_reported_with_the_field(redis_url: str) -> None:
    client = Client(redis_url)
    client.submit(recoverable, run_id="future")
    key = RunKeys("future").definition
    document = orjson.loads(client.connection.get(key))
    document["format"] = 99
    client.connection.set(key, orjson.dumps(document))
    with pytest.raises(DecodeError, match=r"run 'future': definition: field 'format' is 99"):
        RunStore(client.connection).read_definition("future")


def test_garbage_dispatch_entry_is_reported_and_the_run_goes_on(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    client = Client(redis_url)
    run = client.submit(recoverable, params={"fixed": True}, run_id="garbage-dispatch")
    client.connection.hset(RunKeys(run.run_id).dispatch, "zz-not-a-task", b"\x00garbage")
    client.connection.hset(RunKeys(run.run_id).dispatch, "b", b"[1, 2]")
    state = RunStore(client.connection).read_state(run.run_id)
    assert any("dispatch field 'b'" in p for p in state.problems)
    procs.coordinator(redis_url)
    results = run.wait(timeout=30)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    assert "dispatch field 'b'" in procs.log("coordinator"), "the coordinator reported the garbage"


def test_job_for_a_run_that_no_longer_exists_runs_nothing(redis_url: str, procs: Procs) -> None:
    client = Client(redis_url)
    register_stand_in(client.connection, (FLOWS,))  # so the job is routed, to the burst worker's queue
    run = client.submit(recoverable, params={"fixed": True}, run_id="vanishing")
    procs.coordinator(redis_url)
    wait_until(lambda: bool(RunStore(client.connection).read_state(run.run_id).dispatch), 15, "a dispatch")
    RunStore(client.connection).delete_run(run.run_id)
    procs.worker(redis_url, "--burst")
    wait_until(
        lambda: "gone" in procs.log("worker") or "no longer exists" in procs.log("worker"), 20, "the refusal"
    )
    assert procs.ledger_lines() == []


def _changed(workflow: Workflow, name: str, **changes: object) -> Workflow:
    out = Workflow(workflow.name)
    for task in workflow.tasks:
        out.add(dataclasses.replace(task, **changes) if task.name == name else task)
    return out


def test_resume_plan_reruns_tasks_whose_definition_changed(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(recoverable, params={"fixed": True}, run_id="changed-code")
    assert {r.status for r in run.wait(timeout=30).values()} == {TaskStatus.SUCCESS}
    store = RunStore(client.connection)
    changed = _changed(recoverable, "a", retry=Retry(attempts=5))
    changed.task(name="e", depends_on=["c"])(step)
    plan = resume_run(store, run.run_id, workflow=changed, dry_run=True)
    # a changed: it runs again, and so does everything downstream of it (b, c and d take its data)
    assert plan.keep == []
    assert plan.rerun == ["a", "b", "c", "d"] and plan.changed == ["a"]
    assert plan.why == {"a": ["settings"]} and plan.downstream == {"b": "a", "c": "a", "d": "a"}
    assert plan.add == ["e"] and plan.drop == []
    keep_all = resume_run(store, run.run_id, workflow=changed, keep_changed=True, dry_run=True)
    assert keep_all.keep == ["a", "b", "c", "d"] and keep_all.rerun == []
    assert keep_all.changed == ["a"] and keep_all.downstream == {}
    assert store.read_meta(run.run_id).epoch == 1, "a plan changes nothing"
    resume_run(store, run.run_id, workflow=changed)
    results = run.wait(timeout=30)
    assert store.read_meta(run.run_id).epoch == 2
    assert set(results) == {"a", "b", "c", "d", "e"}
    runs = [line["task"] for line in procs.ledger_lines()]
    assert runs.count("a") == 2 and runs.count("b") == 2 and runs.count("c") == 2 and runs.count("e") == 1
