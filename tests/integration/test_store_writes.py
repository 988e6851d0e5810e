"""RunStore's transactions against a real Redis: the fenced dispatch and a resume's new epoch."""

from __future__ import annotations

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from rqdag import TaskResult, TaskStatus
from rqdag.errors import LeaseLostError
from rqdag.shared.store.keys import ACTIVE_RUNS, RunKeys
from rqdag.shared.store.records import DispatchEntry
from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import fifty


def _dispatch_one(store: RunStore, queue: Queue, lease_value: str) -> None:
    entry = DispatchEntry(attempt=1, token="t1", job_id="rqdag_root_a1", state="queued")
    data = Queue.prepare_data("builtins:print", job_id="rqdag_root_a1")
    store.dispatch(
        "w", lease_value, {"root": entry.to_json()}, lambda pipe: queue.enqueue_many([data], pipeline=pipe)
    )


def test_a_dispatch_writes_entries_and_jobs_together_and_nothing_without_the_lease(
    redis_conn: redis.Redis,
) -> None:
    store = RunStore(redis_conn)
    store.create_run(fifty, run_id="w")
    keys = RunKeys("w")
    queue = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    redis_conn.set(keys.lease, "owner-b:2")
    with pytest.raises(LeaseLostError, match="lease lost before dispatch"):
        _dispatch_one(store, queue, "owner-a:1")
    assert redis_conn.hlen(keys.dispatch) == 0
    assert queue.count == 0

    def taken_over_meanwhile(pipe: redis.client.Pipeline) -> None:
        queue.enqueue_many([Queue.prepare_data("builtins:print", job_id="rqdag_x_a1")], pipeline=pipe)
        redis_conn.set(keys.lease, "owner-c:3")  # another client, between WATCH and EXEC

    with pytest.raises(LeaseLostError, match="lease changed during dispatch"):
        store.dispatch("w", "owner-b:2", {"x": b"{}"}, taken_over_meanwhile)
    assert redis_conn.hlen(keys.dispatch) == 0
    assert queue.count == 0

    _dispatch_one(store, queue, "owner-c:3")
    assert redis_conn.hkeys(keys.dispatch) == [b"root"]
    assert queue.job_ids == ["rqdag_root_a1"]


def test_a_new_epoch_sets_results_aside_and_reopens_the_run(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn)
    kept, failed = TaskResult(TaskStatus.SUCCESS, data=1), TaskResult.failure("boom")
    store.create_run(fifty, run_id="e", snapshot={"root": kept})
    keys = RunKeys("e")
    redis_conn.hset(keys.dispatch, "chain0_0", b"{}")
    redis_conn.srem(ACTIVE_RUNS, "e")
    store.mark_error("e", "something broke")

    store.open_epoch(store.read_meta("e"), set_aside={"root": failed}, task_count=50)

    meta = store.read_meta("e")
    assert (meta.epoch, meta.status) == (2, "pending")
    assert redis_conn.hget(keys.meta, "error") == b""
    assert store.read_results("e") == {}
    assert redis_conn.exists(keys.dispatch) == 0
    assert store.active_runs() == ["e"]
    assert [(a["kind"], a["task"], a["epoch"]) for a in read_audit(store, "e")] == [("resume", "root", 1)]


def test_dropping_a_lease_deletes_only_the_lease(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn)
    store.create_run(fifty, run_id="d")
    redis_conn.set(RunKeys("d").lease, "gone:1")
    store.drop_lease("d")
    assert redis_conn.exists(RunKeys("d").lease) == 0
    assert store.exists("d")
