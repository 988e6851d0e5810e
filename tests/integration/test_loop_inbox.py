"""A driver loop hears its runs' news through its inbox, and sweeps for news told nowhere.

The lease a loop takes names its inbox in the run's meta; the workers' finish and
hand-back scripts and the operators' writes append the run's events key there,
and only to a live inbox whose name is rqdag's. A run whose news came with no
notice (a worker of an older rqdag) is heard by the loop's sweep of every stream,
or at once by a loop of few runs, which reads all their streams in its blocking read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from rqdag import Client, Task, Workflow
from rqdag.coordinator import loop_inbox, multiplex
from rqdag.coordinator.loop_inbox import LoopInbox
from rqdag.coordinator.service import CoordinatorService
from rqdag.shared.model.codec import encode_result
from rqdag.shared.model.result import TaskResult
from rqdag.shared.store.keys import RunKeys, coordinator_inbox
from rqdag.shared.store.records import parse_dispatch_entry
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from tests.integration.flows import step
from tests.support.wait import wait_until

one = Workflow("inbox-one", [Task("only", step)])
HEARD_S = 1.5  # a notified finish is stepped within this, on a loaded machine


def _running_attempt(conn: redis.Redis, run_id: str, task: str) -> str:
    """Start the queued attempt of ``task`` as a worker would; its token."""
    keys = RunKeys(run_id)
    wait_until(lambda: conn.hget(keys.dispatch, task) is not None, 20, f"{task} dispatched")
    token = parse_dispatch_entry(run_id, task, conn.hget(keys.dispatch, task) or b"").token
    Scripts.register(conn).start_task(
        keys,
        task=task,
        token=token,
        worker="by-hand",
        claim="c1",
        now=time.time(),
        heartbeat_timeout_s=None,
        depends_on=[],
    )
    return token


def _finish(conn: redis.Redis, run_id: str, task: str, token: str) -> None:
    Scripts.register(conn).finish_task(
        RunKeys(run_id),
        task=task,
        token=token,
        result=encode_result(TaskResult.success(7), what="r"),
        status="success",
        final=True,
        now=time.time(),
        inline=True,
    )


@contextmanager
def _service(conn: redis.Redis) -> Iterator[CoordinatorService]:
    service = CoordinatorService(conn, poll_s=0.2)
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(timeout=30)


def _ended_within(conn: redis.Redis, run_id: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if RunStore(conn).read_meta(run_id).finished:
            return True
        time.sleep(0.02)
    return False


def test_a_finish_is_heard_through_the_inbox_alone(
    redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_inbox, "SWEEP_S", 3600.0)  # no sweep: only the inbox can tell the loop
    monkeypatch.setattr(multiplex, "DIRECT_READ_RUNS", 0)  # as a loop of many runs
    with _service(redis_conn) as service:
        Client(connection=redis_conn).submit(one, run_id="told")
        token = _running_attempt(redis_conn, "told", "only")
        inbox = redis_conn.hget(RunKeys("told").meta, "inbox")
        assert inbox is not None and inbox.decode().startswith(coordinator_inbox(service.owner, 0)[:-1])
        _finish(redis_conn, "told", "only", token)
        assert _ended_within(redis_conn, "told", HEARD_S), "the loop did not hear the finish"
        # news with no notice (the run's meta names no inbox: an older worker) is not heard...
        Client(connection=redis_conn).submit(one, run_id="untold")
        token = _running_attempt(redis_conn, "untold", "only")
        redis_conn.hdel(RunKeys("untold").meta, "inbox")
        _finish(redis_conn, "untold", "only", token)
        assert not _ended_within(redis_conn, "untold", 2 * HEARD_S), "a loop reads only the runs with news"
    assert redis_conn.exists(inbox) == 0, "a stopping loop deletes its inbox"


def test_news_told_nowhere_is_heard_by_the_sweep(
    redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_inbox, "SWEEP_S", 1.0)
    monkeypatch.setattr(multiplex, "DIRECT_READ_RUNS", 0)
    with _service(redis_conn):
        Client(connection=redis_conn).submit(one, run_id="swept")
        token = _running_attempt(redis_conn, "swept", "only")
        redis_conn.hdel(RunKeys("swept").meta, "inbox")
        _finish(redis_conn, "swept", "only", token)
        assert _ended_within(redis_conn, "swept", 1.0 + 3 * HEARD_S), "the sweep did not hear the finish"
    assert Client(connection=redis_conn).run("swept").snapshot()["only"].data == 7


def test_an_inbox_lost_is_back_within_its_refresh_and_tells_the_loop_again(
    redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_inbox, "SWEEP_S", 3600.0)  # no sweep: only the inbox can tell the loop
    monkeypatch.setattr(multiplex, "DIRECT_READ_RUNS", 0)
    with _service(redis_conn):
        Client(connection=redis_conn).submit(one, run_id="relost")
        token = _running_attempt(redis_conn, "relost", "only")
        inbox = (redis_conn.hget(RunKeys("relost").meta, "inbox") or b"").decode()
        redis_conn.delete(inbox)  # as a Redis restarted empty, or flushed, would lose it
        wait_until(lambda: redis_conn.exists(inbox) == 1, loop_inbox.REFRESH_S + 2.0, "the inbox to be back")
        _finish(redis_conn, "relost", "only", token)
        assert _ended_within(redis_conn, "relost", HEARD_S), "the loop did not hear the finish"


def test_a_loop_of_few_runs_reads_their_streams_in_its_blocking_read(
    redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_inbox, "SWEEP_S", 3600.0)
    with _service(redis_conn):
        Client(connection=redis_conn).submit(one, run_id="direct")
        token = _running_attempt(redis_conn, "direct", "only")
        redis_conn.hdel(RunKeys("direct").meta, "inbox")  # no notice: heard all the same
        _finish(redis_conn, "direct", "only", token)
        assert _ended_within(redis_conn, "direct", HEARD_S), "the loop did not read the run's stream"


def test_the_scripts_write_only_to_a_live_inbox_of_rqdag(redis_conn: redis.Redis) -> None:
    Client(connection=redis_conn).submit(one, run_id="aimed")
    keys, scripts = RunKeys("aimed"), Scripts.register(redis_conn)
    inbox = LoopInbox(redis_conn, "c1", 0)
    assert scripts.acquire_lease(keys, owner="c1", ttl_ms=10_000, inbox=inbox.key)
    assert redis_conn.hget(keys.meta, "inbox") == inbox.key.encode()
    redis_conn.hset(keys.dispatch, "only", b'{"attempt":1,"token":"t1","job_id":"j","state":"queued"}')
    token = _running_attempt(redis_conn, "aimed", "only")
    _finish(redis_conn, "aimed", "only", token)
    assert redis_conn.exists(inbox.key) == 0, "an inbox its loop does not keep is not created"
    inbox.keep(time.monotonic())
    RunStore(redis_conn).request_cancel("aimed")
    assert [f[b"e"] for _, f in redis_conn.xrange(inbox.key)][-1] == keys.events.encode()
    redis_conn.hset(keys.meta, "inbox", "rq:queue:default")  # garbage aimed elsewhere: not written
    redis_conn.rpush("rq:queue:default", "x")
    RunStore(redis_conn).request_cancel("aimed")
    assert redis_conn.type("rq:queue:default") == b"list"
    # a driver with no inbox of its own (``rqdag drive``) taking the run over clears the field
    assert scripts.release_lease(keys, lease="c1|1")
    assert scripts.acquire_lease(keys, owner="c2", ttl_ms=10_000)
    assert redis_conn.hget(keys.meta, "inbox") is None
