"""rqdag workers against a real redis-server, each run as a real RQ worker process.

Each test writes a run's keys by hand, exactly as the coordinator does (meta with
params, results, and for each attempt its dispatch entry and RQ job in one
MULTI/EXEC), runs a worker in burst mode, and reads back what it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import pytest

from rqdag.shared.model.codec import decode_result
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.store.keys import RunKeys
from tests.support.runs import create_run, dispatch, store_result
from tests.support.workers import Env, path_of


def kinds(events: Iterable[Mapping[str, str]]) -> list[str]:
    return [event["kind"] for event in events]


# -- tests ---------------------------------------------------------------------


def test_success_is_written_and_the_entry_dropped(env: Env) -> None:
    create_run(env.conn, "r1", {"date": "2026-11-28"})
    spec = dispatch(env.conn, "r1", "hello", path_of("echo"), definition_hash="h1")

    env.run_worker(name="w-one")

    result = env.result("r1", "hello")
    assert result is not None and result.status == TaskStatus.SUCCESS
    assert result.data["params"] == {"date": "2026-11-28"}
    assert result.data["idempotency_key"] == "rqdag:r1:hello"
    assert result.definition_hash == "h1"
    assert result.metrics.worker == "w-one" and result.metrics.attempt == 1
    assert env.entry("r1", "hello") is None
    assert kinds(env.events("r1")) == ["started", "finished"]
    assert env.events("r1")[1]["status"] == "success"
    assert [(line["run_id"], line["task"], line["attempt"]) for line in env.ledger_lines()] == [
        ("r1", "hello", 1)
    ]
    assert env.job_return(spec) == "success"


def test_inputs_are_the_data_of_successful_dependencies(env: Env) -> None:
    create_run(env.conn, "r2")
    store_result(env.conn, "r2", "a", TaskResult.success({"n": 1}))
    store_result(env.conn, "r2", "b", TaskResult.failure("no"))
    store_result(env.conn, "r2", "c", TaskResult.skipped("condition is false"))
    dispatch(env.conn, "r2", "sum", path_of("echo"), depends_on=("a", "b", "c", "missing"))

    env.run_worker()

    result = env.result("r2", "sum")
    assert result is not None and result.status == TaskStatus.SUCCESS
    assert result.data["inputs"] == {"a": {"n": 1}}


def test_an_undecodable_dependency_result_is_a_final_failure(env: Env) -> None:
    create_run(env.conn, "r3")
    env.conn.hset(RunKeys("r3").results, "a", b"{not json")
    dispatch(env.conn, "r3", "sum", path_of("echo"), depends_on=("a",), retries=3)

    env.run_worker()

    result = env.result("r3", "sum")
    assert result is not None and result.status == TaskStatus.FAILURE
    assert "run 'r3'" in (result.message or "") and "task 'sum'" in (result.message or "")
    assert "dependency 'a'" in (result.message or "")
    assert env.ledger_lines() == []


def test_a_failure_with_retries_left_waits_for_a_retry(env: Env) -> None:
    create_run(env.conn, "r4")
    dispatch(env.conn, "r4", "flaky", path_of("fail"), attempt=1, retries=2)

    env.run_worker()

    assert env.result("r4", "flaky") is None
    entry = env.entry("r4", "flaky")
    assert entry is not None and entry["state"] == "retry_wait"
    last = decode_result(entry["last_result"], what="test")
    assert last.status == TaskStatus.FAILURE and "boom in flaky" in (last.message or "")
    assert "RuntimeError" in (last.error or "")
    assert kinds(env.events("r4")) == ["started", "retry"]


def test_the_last_failure_is_final(env: Env) -> None:
    create_run(env.conn, "r5")
    dispatch(env.conn, "r5", "flaky", path_of("fail"), attempt=3, retries=2, failures=2)

    env.run_worker()

    result = env.result("r5", "flaky")
    assert result is not None and result.status == TaskStatus.FAILURE
    assert result.metrics.attempt == 3
    assert env.entry("r5", "flaky") is None
    assert kinds(env.events("r5")) == ["started", "finished"]


def test_a_condition_from_a_workflow_of_the_tasks_module(env: Env) -> None:
    create_run(env.conn, "r6")
    dispatch(env.conn, "r6", "checked", path_of("echo"), condition="operator:truth")
    dispatch(env.conn, "r6", "skipped", path_of("echo"), condition=path_of("never"))

    env.run_worker()

    checked, skipped = env.result("r6", "checked"), env.result("r6", "skipped")
    assert checked is not None and checked.status == TaskStatus.SUCCESS
    assert skipped is not None and skipped.status == TaskStatus.SKIPPED
    assert [line["task"] for line in env.ledger_lines()] == ["checked"]


@pytest.mark.parametrize(
    ("setup", "outcome"),
    [
        ("stale", "stale"),
        ("done", "done"),
        ("gone", "gone"),
        ("cancelled", "cancelled"),
    ],
)
def test_attempts_that_must_not_run(env: Env, setup: str, outcome: str) -> None:
    if setup != "gone":
        create_run(env.conn, "r7", cancel="stop it" if setup == "cancelled" else "")
    if setup == "done":
        store_result(env.conn, "r7", "t", TaskResult.success("earlier"))
    spec = dispatch(
        env.conn,
        "r7",
        "t",
        path_of("echo"),
        job_token="job-token",
        entry_token="newer-token" if setup == "stale" else None,
    )
    before_results = env.conn.hgetall(RunKeys("r7").results)

    env.run_worker()

    assert env.ledger_lines() == []
    if outcome == "cancelled":  # RQ holds it as failed, saying why; the others did their job
        failure = env.rq_failure(spec)
        assert failure is not None and failure[0] == "failed"
        assert "not started: the run is being cancelled (stop it)" in failure[1]
    else:
        assert env.rq_failure(spec) is None
        assert env.job_return(spec) == outcome
    assert env.conn.hgetall(RunKeys("r7").results) == before_results
    if setup != "gone":
        entry = env.entry("r7", "t")
        assert entry is not None and entry["state"] == "queued"
    assert "started" not in kinds(env.events("r7"))


def test_an_unregistered_function_is_never_imported(env: Env) -> None:
    create_run(env.conn, "r8")
    marker = env.ledger.parent / "marker"
    dispatch(env.conn, "r8", "evil", "os:getcwd", retries=5)
    dispatch(env.conn, "r8", "imported", path_of("getpid"))
    dispatch(env.conn, "r8", "cond", path_of("echo"), condition="os:getcwd")

    env.run_worker()

    for task, path in [("evil", "os:getcwd"), ("imported", path_of("getpid")), ("cond", "os:getcwd")]:
        result = env.result("r8", task)
        assert result is not None and result.status == TaskStatus.FAILURE, task
        assert f"{path!r} is not a registered task on this worker" in (result.message or "")
        assert "--tasks" in (result.message or "")
    assert env.ledger_lines() == []
    assert not marker.exists()


def test_timeout_is_enforced_in_the_job(env: Env) -> None:
    create_run(env.conn, "r9", {"sleep": 5})
    dispatch(env.conn, "r9", "slow", path_of("sleepy"), timeout_s=0.5)
    dispatch(env.conn, "r9", "after", path_of("echo"))

    started = time.monotonic()
    env.run_worker()
    elapsed = time.monotonic() - started

    result = env.result("r9", "slow")
    assert result is not None and result.status == TaskStatus.FAILURE
    assert result.message == "timed out after 0.5s"
    assert result.metrics.duration_s is not None and 0.4 < result.metrics.duration_s < 2
    assert elapsed < 4
    after = env.result("r9", "after")  # the worker went on with the next job
    assert after is not None and after.status == TaskStatus.SUCCESS


def test_an_oversized_result_is_replaced_by_a_failure(env: Env) -> None:
    create_run(env.conn, "r10", {"size": 5000})
    dispatch(env.conn, "r10", "huge", path_of("big"))

    env.run_worker(max_result_bytes=1000)

    result = env.result("r10", "huge")
    assert result is not None and result.status == TaskStatus.FAILURE
    message = result.message or ""
    assert "task 'huge'" in message and "limit of 1000 bytes" in message
    assert any(word.isdigit() and int(word) > 5000 for word in message.split())
    assert result.data is None


def test_context_factory_runs_once_per_process(env: Env) -> None:
    create_run(env.conn, "r12")
    for name in ("a", "b", "c"):
        dispatch(env.conn, "r12", name, path_of("echo"))

    env.run_worker(context=path_of("make_context"))

    calls = env.ledger_lines("context")
    runs = env.ledger_lines()
    assert len(calls) == 1 and len(runs) == 3
    assert {line["pid"] for line in runs} == {calls[0]["pid"]}
    for name in ("a", "b", "c"):
        result = env.result("r12", name)
        assert result is not None and result.data["context"] == {"pid": calls[0]["pid"]}


@pytest.mark.parametrize("worker_class", ["fork", "spawn"])
def test_other_worker_classes_run_tasks(env: Env, worker_class: str) -> None:
    create_run(env.conn, "r13")
    names = ("a", "b") if worker_class == "fork" else ("a",)
    for name in names:
        dispatch(env.conn, "r13", name, path_of("echo"))

    env.run_worker(worker_class=worker_class, context=path_of("make_context"))

    runs = env.ledger_lines()
    assert sorted(line["task"] for line in runs) == list(names)
    # each work horse is its own process, with its own context object
    assert len({line["pid"] for line in runs}) == len(names)
    assert len(env.ledger_lines("context")) == len(names)
    for name in names:
        result = env.result("r13", name)
        assert result is not None and result.status == TaskStatus.SUCCESS
