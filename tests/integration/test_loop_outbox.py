"""A driver loop's dispatch calls of one round, sent together, against a real Redis.

Each call stays its own fenced script run: a run whose lease is gone writes
nothing and is named with why, the others' entries and jobs are written and
their dispatchers told; a Redis that refuses writes names every run.
"""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from rqdag.coordinator.loop_outbox import DispatchOutbox
from rqdag.coordinator.rq_jobs import queued_job
from rqdag.errors import LeaseLostError
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from rqdag.shared.store.scripts.base import ScriptCall
from tests.integration.flows import fifty


def _call(scripts: Scripts, queue: Queue, run_id: str, lease: str) -> ScriptCall:
    job_id = f"rqdag_{run_id}_root_a1"
    entry = DispatchEntry(attempt=1, token="t1", job_id=job_id, state="queued")
    job = queued_job(queue, Queue.prepare_data("builtins:print", job_id=job_id))
    entries = {"root": entry.to_json()}
    queues = Queue.redis_queues_keys
    keys = RunKeys(run_id)
    return scripts.dispatch_jobs.request(keys, lease=lease, entries=entries, jobs=[job], queues_key=queues)


def test_a_round_s_calls_are_fenced_each_and_only_the_refused_run_is_named(redis_conn: redis.Redis) -> None:
    store, scripts = RunStore(redis_conn), Scripts.register(redis_conn)
    queue = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    for run_id in ("a", "b", "c"):
        store.create_run(fifty, run_id=run_id)
        redis_conn.set(RunKeys(run_id).lease, f"me:{run_id}")
    redis_conn.set(RunKeys("b").lease, "someone-else:9")  # b's lease was taken over
    outbox = DispatchOutbox(redis_conn, scripts.dispatch_jobs)
    accepted: list[str] = []
    for run_id in ("a", "b", "c"):
        call = _call(scripts, queue, run_id, f"me:{run_id}")
        outbox.hold(run_id, call, lambda r=run_id: accepted.append(r))
    assert outbox.holds("b") and not outbox.holds("z")
    assert redis_conn.hlen(RunKeys("a").dispatch) == 0, "nothing is sent before the flush"

    failed = outbox.flush()

    assert list(failed) == ["b"] and isinstance(failed["b"], LeaseLostError)
    assert "run 'b'" in str(failed["b"])
    assert accepted == ["a", "c"]
    assert redis_conn.hlen(RunKeys("b").dispatch) == 0 and not redis_conn.exists("rq:job:rqdag_b_root_a1")
    for run_id in ("a", "c"):
        assert redis_conn.hkeys(RunKeys(run_id).dispatch) == [b"root"]
    assert queue.job_ids == ["rqdag_a_root_a1", "rqdag_c_root_a1"]
    assert not outbox.holds("a") and outbox.flush() == {}


def test_a_full_redis_names_every_run_of_the_round_and_writes_none(redis_conn: redis.Redis) -> None:
    store, scripts = RunStore(redis_conn), Scripts.register(redis_conn)
    queue = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    for run_id in ("a", "b"):
        store.create_run(fifty, run_id=run_id)
        redis_conn.set(RunKeys(run_id).lease, f"me:{run_id}")
    outbox = DispatchOutbox(redis_conn, scripts.dispatch_jobs)
    accepted: list[str] = []
    for run_id in ("a", "b"):
        call = _call(scripts, queue, run_id, f"me:{run_id}")
        outbox.hold(run_id, call, lambda r=run_id: accepted.append(r))
    used = int(redis_conn.info("memory")["used_memory"])
    redis_conn.config_set("maxmemory", used // 2)
    redis_conn.config_set("maxmemory-policy", "noeviction")
    try:
        failed = outbox.flush()
    finally:
        redis_conn.config_set("maxmemory", 0)
    assert sorted(failed) == ["a", "b"]
    assert all(isinstance(exc, redis.exceptions.OutOfMemoryError) for exc in failed.values()), failed
    assert accepted == []
    assert redis_conn.hlen(RunKeys("a").dispatch) == 0 and queue.count == 0
