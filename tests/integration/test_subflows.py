"""Child runs of subflow tasks, with a real coordinator service and a real worker."""

from __future__ import annotations

import os
import signal

from rqdag import Client, TaskRunnerBuilder, TaskStatus
from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.store.runs import RunStore
from tests.integration.wait_flows import parent_flow
from tests.support.cli import invoke
from tests.support.processes import Procs
from tests.support.runs import wait_status
from tests.support.wait import wait_for, wait_until

TASKS = "tests.integration.wait_flows"
CHILD_TASKS = ["invoice", "charge_cards", "send_receipts"]


def runs_of(procs: Procs, run_id: str) -> list[str]:
    return [line["task"] for line in procs.ledger_lines() if line["run_id"] == run_id]


def test_a_subflow_runs_its_child_and_ends_with_the_childs_final_data(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, tasks=TASKS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(parent_flow(), run_id="order-1")
    results = run.wait(timeout=60)
    assert run.status().status == "succeeded", results
    child = client.run("order-1.billing")
    assert child.status().status == "succeeded"
    assert results["billing"].data == {
        "charge_cards": {"task": "charge_cards", "orders": 7},
        "send_receipts": {"task": "send_receipts", "orders": 7},
    }
    assert results["billing"].message == "child run order-1.billing succeeded"
    assert results["ship"].data == {"billing": results["billing"].data}
    assert RunStore(client.connection).read_parent("order-1.billing") == ("order-1", "billing", 1)
    assert sorted(runs_of(procs, "order-1.billing")) == sorted(CHILD_TASKS)
    assert "child run: order-1.billing" in invoke("status", "order-1", "--redis", redis_url).output
    assert (
        "parent run: order-1 (subflow billing)"
        in invoke("status", "order-1.billing", "--redis", redis_url).output
    )
    inspected = invoke("inspect", "order-1", "billing", "--redis", redis_url).output
    assert "child run" in inspected and "order-1.billing" in inspected


def test_a_coordinator_killed_after_the_child_started_starts_no_second_child(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url, tasks=TASKS)
    first = procs.coordinator(redis_url, "--lease-ttl", "1", name="c1")
    client = Client(redis_url)
    run = client.submit(parent_flow(), run_id="order-2", params={"child": {"sleep_s": 1.0}})
    store = RunStore(client.connection)
    wait_until(lambda: store.exists("order-2.billing"), 30, "the child run started")
    created = store.read_meta("order-2.billing").created_at
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    procs.coordinator(redis_url, "--lease-ttl", "1", name="c2")
    results = run.wait(timeout=60)
    assert results["billing"].status is TaskStatus.SUCCESS
    assert store.read_meta("order-2.billing").created_at == created  # the same child, not a new one
    assert store.read_meta("order-2.billing").epoch == 1
    assert sorted(runs_of(procs, "order-2.billing")) == sorted(CHILD_TASKS)  # each child task once


def test_cancelling_the_parent_cancels_its_child(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, tasks=TASKS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(parent_flow(), run_id="order-3", params={"child": {"sleep_s": 3.0}})
    child = wait_for(lambda: RunStore(client.connection).exists("order-3.billing"), 30, "the child run")
    assert child
    run.cancel("stop")
    wait_status(run, ["cancelled"], timeout=30)
    wait_status(client.run("order-3.billing"), ["cancelled"], timeout=30)
    assert "stop" in (client.run("order-3.billing").status().cancel or "")


def test_resuming_the_parent_resumes_its_failed_child_in_a_new_epoch(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, tasks=TASKS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(parent_flow(), run_id="order-4", params={"child": {"fail": ["charge_cards"]}})
    results = run.wait(timeout=60)
    assert run.status().status == "failed"
    assert results["billing"].status is TaskStatus.FAILURE
    assert results["billing"].message == "child run order-4.billing failed: failed tasks charge_cards"
    assert results["ship"].status is TaskStatus.SKIPPED
    store = RunStore(client.connection)
    store.client.hset("rqdag:run:{order-4.billing}:meta", "params", b'{"orders": 7}')  # fixed: fails no more
    client.resume("order-4")
    results = run.wait(timeout=60)
    assert run.status().status == "succeeded", results
    child = store.read_meta("order-4.billing")
    assert child.epoch == 2 and child.status == "succeeded"
    ran = runs_of(procs, "order-4.billing")
    assert ran.count("invoice") == 1  # the child's success was kept
    assert ran.count("charge_cards") == 2 and ran.count("send_receipts") == 1
    assert runs_of(procs, "order-4").count("billing.params") == 1  # its success kept: the same params


def test_child_runs_require_redis() -> None:
    try:
        TaskRunnerBuilder().build().execute(parent_flow())
    except WorkflowDefinitionError as exc:
        assert "child runs require Redis" in str(exc)
    else:
        raise AssertionError("an in-process run of a subflow must be refused")
