"""How a coordinator learns of results: small ones in their event, and a takeover that reads statuses only."""

from __future__ import annotations

import orjson
import redis

from rqdag import TaskResult, TaskStatus
from rqdag.client import Client
from rqdag.coordinator.progress import STORED_SUCCESS, read_progress
from rqdag.shared.model.codec import encode_result
from rqdag.shared.model.result import TaskMetrics
from rqdag.shared.store.keys import RunKeys
from rqdag.worker.job import INLINE_RESULT_BYTES
from tests.integration.flows import fifty, sized
from tests.support.processes import Procs


def test_a_takeover_reads_successes_by_status_and_decodes_everything_else(redis_conn: redis.Redis) -> None:
    client = Client(connection=redis_conn)
    client.submit(fifty, run_id="progress")
    keys = RunKeys("progress")
    plain = TaskResult(TaskStatus.SUCCESS, data={"n": 1}, metrics=TaskMetrics(attempt=1, worker="w"))
    doubtful = TaskResult(TaskStatus.SUCCESS, data=1, in_doubt=True)
    failed = TaskResult.failure("boom", error="Traceback ...")
    redis_conn.hset(
        keys.results,
        mapping={
            "root": encode_result(plain, what="root"),
            "chain0_0": encode_result(doubtful, what="chain0_0"),
            "chain1_0": encode_result(failed, what="chain1_0"),
            "chain2_0": b"\x00not json",
            "chain3_0": orjson.dumps({"data": 1, "status": "success"}),  # another writer's key order
        },
    )
    redis_conn.hset(keys.dispatch, mapping={"chain0_1": b"[1, 2]"})
    newest = redis_conn.xadd(keys.events, {"kind": "status", "status": "running"})
    state = read_progress(redis_conn, "progress")
    assert state.results["root"] is STORED_SUCCESS
    assert state.results["chain0_0"] == doubtful, "a success in doubt is decoded: it holds its dependents"
    assert state.results["chain1_0"] == failed
    assert state.results["chain3_0"] == TaskResult(TaskStatus.SUCCESS, data=1)
    assert state.results["chain2_0"].status is TaskStatus.FAILURE
    assert any("results field 'chain2_0'" in p for p in state.problems)
    assert any("dispatch field 'chain0_1'" in p for p in state.problems)
    assert state.last_event_id == newest
    assert len(state.results) == 5


def test_small_results_travel_in_their_event_and_large_ones_are_read_from_the_hash(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    pad = {"small": 10, "large": INLINE_RESULT_BYTES * 3, "join": 0}
    run = client.submit(sized, params={"pad": pad}, run_id="sized")
    results = run.wait(timeout=60)
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(
        ("small", "large", "join"), TaskStatus.SUCCESS
    )
    assert results["join"].data["seen"] == {"small": 10, "large": INLINE_RESULT_BYTES * 3}
    stored = client.connection.hgetall(RunKeys("sized").results)
    finished = {
        fields[b"task"].decode(): fields
        for _, fields in client.connection.xrange(RunKeys("sized").events)
        if fields.get(b"kind") == b"finished"
    }
    assert finished["small"][b"result"] == stored[b"small"]
    assert b"result" not in finished["large"]
    client.connection.close()
