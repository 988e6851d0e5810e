"""What a driver does to open a run: take the lease (naming itself the driver), read the run in one
MULTI/EXEC when it is small, and leave the watchdog's first check for later when nothing is in flight."""

from __future__ import annotations

import time

import redis

from rqdag import Task, Workflow
from rqdag.client import Client
from rqdag.coordinator.lease import Lease
from rqdag.coordinator.progress import FIRST_COUNT, read_opening, read_progress
from rqdag.coordinator.rq_dispatcher import RQDispatcher
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Acquired, LeaseRefusal, Scripts
from tests.integration.flows import fifty, step


def test_the_acquisition_names_the_driver_and_tells_the_one_before(redis_conn: redis.Redis) -> None:
    Client(connection=redis_conn).submit(fifty, run_id="named")
    scripts, keys = Scripts.register(redis_conn), RunKeys("named")
    first = scripts.acquire_lease(keys, owner="c1", ttl_ms=10_000)
    assert first == Acquired(1, True, None)
    assert scripts.acquire_lease(keys, owner="c1", ttl_ms=10_000, known=1) == Acquired(1, False, None)
    assert scripts.acquire_lease(keys, owner="c2", ttl_ms=10_000) is LeaseRefusal.HELD_ELSEWHERE
    assert scripts.release_lease(keys, lease="c1|1")
    assert scripts.acquire_lease(keys, owner="c2", ttl_ms=10_000) == Acquired(2, True, "c1")
    assert redis_conn.hget(keys.meta, "driver") == b"c2"
    assert scripts.acquire_lease(RunKeys("nothing"), owner="c2", ttl_ms=10_000) is LeaseRefusal.NO_RUN


def test_a_small_run_is_read_whole_at_one_instant_and_a_large_one_in_chunks(redis_conn: redis.Redis) -> None:
    client = Client(connection=redis_conn)
    client.submit(fifty, run_id="small")
    keys = RunKeys("small")
    redis_conn.hset(keys.results, "root", b'{"status":"success","data":1}')
    redis_conn.hset(keys.dispatch, "chain0_0", b'{"attempt":1,"token":"1-a","job_id":"j","state":"queued"}')
    redis_conn.xadd(keys.events, {"kind": "started", "task": "chain0_0"})
    opening = read_opening(redis_conn, "small")
    assert opening.meta[b"workflow"] == b"fifty" and opening.definition == redis_conn.get(keys.definition)
    assert opening.progress == read_progress(redis_conn, "small")
    big = Workflow("big", [Task(f"t{i}", step) for i in range(3 * FIRST_COUNT)])
    # values as long as real results (past a listpack's 64 bytes): HSCAN returns such a hash in chunks
    done = {f"t{i}": b'{"status":"success","data":"' + b"x" * 80 + b'"}' for i in range(3 * FIRST_COUNT)}
    client.submit(big, run_id="big")
    redis_conn.hset(RunKeys("big").results, mapping=done)  # type: ignore[arg-type]
    opened = read_opening(redis_conn, "big")
    assert opened.progress is None, "more than one chunk: read with read_progress"
    assert len(read_progress(redis_conn, "big").results) == 3 * FIRST_COUNT


def test_the_first_check_of_a_run_with_nothing_in_flight_waits_one_interval(redis_conn: redis.Redis) -> None:
    Client(connection=redis_conn).submit(fifty, run_id="quiet")
    scripts = Scripts.register(redis_conn)
    lease = Lease(redis_conn, scripts, "quiet", "c1")
    assert lease.acquire()
    before = time.monotonic()
    adopted = RQDispatcher(redis_conn, scripts, lease, heartbeat_timeout_s=2.0, adopted=True)
    fresh = RQDispatcher(redis_conn, scripts, lease, heartbeat_timeout_s=2.0, adopted=False)
    assert adopted.next_check == 0.0, "attempts adopted from another coordinator are checked at once"
    assert fresh.next_check >= before + 0.5, "nothing in flight: the first check comes one interval later"


def test_a_finished_run_expires_and_leaves_the_work_list_unless_resumed_meanwhile(
    redis_conn: redis.Redis,
) -> None:
    store = RunStore(redis_conn)
    for run_id in ("closed", "reopened"):
        store.create_run(fifty, run_id=run_id, parent=("parent", "sub", 2))
        redis_conn.hset(RunKeys(run_id).meta, mapping={"status": "succeeded", "finished_at": time.time()})
    assert store.close_finished_run("closed", 3600.0) == ("parent", "sub", 2)
    assert not redis_conn.sismember("rqdag:runs:active", "closed")
    assert 3500 < redis_conn.ttl(RunKeys("closed").meta) <= 3600
    redis_conn.hset(RunKeys("reopened").meta, "status", "pending")  # a resume opened it again
    assert store.close_finished_run("reopened", 3600.0) == ("parent", "sub", 2)
    assert redis_conn.sismember("rqdag:runs:active", "reopened"), "its new epoch needs a coordinator"
    assert redis_conn.ttl(RunKeys("reopened").meta) == -1
