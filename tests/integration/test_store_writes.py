"""Fenced writes against a real Redis: the dispatch script and a resume's new epoch."""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from rqdag import TaskResult, TaskStatus
from rqdag.coordinator.rq_jobs import queued_job
from rqdag.shared.store.keys import ACTIVE_RUNS, RunKeys
from rqdag.shared.store.records import DispatchEntry
from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from tests.integration.flows import fifty


def _dispatch_one(client: redis.Redis, queue: Queue, lease_value: str) -> int | None:
    entry = DispatchEntry(attempt=1, token="t1", job_id="rqdag_root_a1", state="queued")
    job = queued_job(queue, Queue.prepare_data("builtins:print", job_id="rqdag_root_a1"))
    return Scripts.register(client).dispatch_jobs(
        RunKeys("w"),
        lease=lease_value,
        entries={"root": entry.to_json()},
        jobs=[job],
        queues_key=Queue.redis_queues_keys,
    )


def test_a_dispatch_writes_entries_and_jobs_together_and_nothing_without_the_lease(
    redis_conn: redis.Redis,
) -> None:
    store = RunStore(redis_conn)
    store.create_run(fifty, run_id="w")
    keys = RunKeys("w")
    queue = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    redis_conn.set(keys.lease, "owner-b:2")
    assert _dispatch_one(redis_conn, queue, "owner-a:1") is None
    assert redis_conn.hlen(keys.dispatch) == 0
    assert queue.count == 0
    assert not redis_conn.exists("rq:job:rqdag_root_a1")

    assert _dispatch_one(redis_conn, queue, "owner-b:2") == 1
    assert redis_conn.hkeys(keys.dispatch) == [b"root"]
    assert queue.job_ids == ["rqdag_root_a1"]
    assert queue.key.encode() in redis_conn.smembers(Queue.redis_queues_keys)
    job = queue.fetch_job("rqdag_root_a1")  # RQ reads the job it would have written itself
    assert job is not None and job.get_status() == "queued" and job.origin == "default"
    assert job.func_name == "builtins:print"


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
