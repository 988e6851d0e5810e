"""The takeover's chunked read races workers that finish tasks meanwhile, and loses nothing.

A run whose root succeeded has half of its tasks in flight (queued attempts) and
half not started. A writer thread plays the workers: it runs the real start and
finish steps (the worker's Lua scripts) on the tasks in flight, one after the
other, while a coordinator reads the run in chunks made tiny, so that many
results are written between two chunks. Every result written meanwhile must be
found by the read or arrive on the events stream after the id the read returns,
and no task in flight may be dispatched again.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from rq import Queue

from rqdag import Task, TaskResult, TaskStatus, Workflow
from rqdag.coordinator import progress
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.lease import Lease
from rqdag.coordinator.progress import STORED_SUCCESS, read_progress
from rqdag.local.redis_server import RedisServer
from rqdag.shared.model.codec import encode_result
from rqdag.shared.store.keys import RunKeys, job_id
from rqdag.shared.store.records import DispatchEntry, text
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import FinishOutcome, Scripts, StartOutcome
from tests.integration.busy import BusyScript
from tests.support.wait import wait_until
from tests.support.workers import register_stand_in

IN_FLIGHT = 1_500
UNSTARTED = 1_500
FUNC = "tests.integration.flows:step"


def half_in_flight(client: redis.Redis, run_id: str) -> tuple[list[str], list[str]]:
    """A run: root succeeded, IN_FLIGHT tasks queued (token ``1-NAME``), UNSTARTED not started."""
    flight = [f"f{i:05d}" for i in range(IN_FLIGHT)]
    unstarted = [f"u{i:05d}" for i in range(UNSTARTED)]
    tasks = [Task("root", FUNC)] + [Task(n, FUNC, depends_on=("root",)) for n in flight + unstarted]
    root = {"root": TaskResult(TaskStatus.SUCCESS, data=1)}
    store = RunStore(client)
    store.create_run(Workflow("racy", tasks), run_id=run_id, snapshot=root)
    entries = {
        n: DispatchEntry(attempt=1, token=f"1-{n}", job_id=job_id(run_id, n, 1), state="queued").to_json()
        for n in flight
    }
    gone_scripts = Scripts.register(client)
    gone = Lease(client, gone_scripts, run_id, "gone")  # the coordinator that died
    assert gone.acquire()
    written = gone_scripts.dispatch_jobs(  # its jobs are not needed here
        RunKeys(run_id), lease=gone.value, entries=entries, jobs=[], queues_key="rq:queues"
    )
    assert written == 0
    gone.release()
    return flight, unstarted


RACE_TRIES = 3


class Workers:
    """A thread that starts and finishes the given tasks with the worker's own scripts."""

    def __init__(self, url: str, run_id: str, names: list[str]) -> None:
        self._client = redis.Redis.from_url(url)
        self._scripts = Scripts.register(self._client)
        self._keys = RunKeys(run_id)
        self._names = random.Random(7).sample(names, len(names))
        self.finished: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)

    def __enter__(self) -> Workers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._client.close()

    def wait_done(self) -> None:
        """Until every task is finished."""
        self._thread.join(timeout=60)
        assert len(self.finished) == len(self._names)

    def _work(self) -> None:
        result = encode_result(TaskResult(TaskStatus.SUCCESS, data={"n": 1}), what="worker")
        for name in self._names:
            if self._stop.is_set():
                return
            token = f"1-{name}"
            start = self._scripts.start_task(
                self._keys,
                task=name,
                token=token,
                worker="w",
                now=time.time(),
                heartbeat_timeout_s=None,
                claim=f"claim-{name}",
                depends_on=["root"],
            )
            assert start.outcome is StartOutcome.OK, (name, start)
            finish = self._scripts.finish_task(
                self._keys,
                task=name,
                token=token,
                result=result,
                status="success",
                final=True,
                now=time.time(),
                inline=bool(len(self.finished) % 2),
            )
            assert finish is FinishOutcome.WRITTEN, (name, finish)
            self.finished.append(name)
            time.sleep(0)  # let the reader go on between two finishes


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few fields, so that a read of a few thousand takes hundreds of round trips."""
    monkeypatch.setattr(progress, "FIRST_COUNT", 2)
    monkeypatch.setattr(progress, "MAX_COUNT", 4)


def finished_after(client: redis.Redis, run_id: str, last_id: bytes) -> set[str]:
    """Tasks with a ``finished`` event after ``last_id``."""
    events: Any = client.xrange(RunKeys(run_id).events, min=b"(" + last_id)
    return {text(f[b"task"]) for _, f in events if f.get(b"kind") == b"finished"}


@pytest.mark.usefixtures("tiny_chunks")
def test_results_written_between_chunks_are_read_or_follow_as_events(
    redis_url: str, redis_conn: redis.Redis
) -> None:
    for attempt in range(RACE_TRIES):  # the thread scheduler decides how many finishes overlap the read
        run_id = f"racy-{attempt}"
        flight, unstarted = half_in_flight(redis_conn, run_id)
        with Workers(redis_url, run_id, flight) as workers:
            wait_until(lambda: len(workers.finished) > IN_FLIGHT // 10, 30, "the first finishes")
            before = len(workers.finished)
            state = read_progress(redis_conn, run_id)
            during = len(workers.finished) - before
            workers.wait_done()
        if during > 50:
            break
    assert during > 50, f"only {during} tasks finished while the run was read: no race was tested"
    assert state.results.pop("root") is STORED_SUCCESS
    assert all(r is STORED_SUCCESS for r in state.results.values())
    assert set(state.results) <= set(flight)
    assert not set(unstarted) & (set(state.results) | set(state.dispatch)), "unstarted tasks stay so"
    neither = set(flight) - set(state.results) - set(state.dispatch)
    assert not neither, f"tasks neither done nor in flight would be dispatched again: {sorted(neither)[:5]}"
    assert all(state.dispatch[n].token == f"1-{n}" for n in state.dispatch)
    followed = finished_after(redis_conn, run_id, state.last_event_id)
    lost = set(flight) - set(state.results) - followed
    assert not lost, f"results neither read nor on the stream after the read: {sorted(lost)[:5]}"


@pytest.mark.usefixtures("tiny_chunks")
def test_a_takeover_during_finishes_dispatches_only_what_never_started(
    redis_url: str, redis_conn: redis.Redis
) -> None:
    flight, unstarted = half_in_flight(redis_conn, "racy")
    # a registered worker for the run's tasks, so that the takeover routes their jobs (to its queue)
    queue = Queue(register_stand_in(redis_conn, (FUNC.partition(":")[0],)), connection=redis_conn)
    stop = threading.Event()
    driver = RunDriver(redis_conn, "racy", "taker", stop=stop)
    thread = threading.Thread(target=driver.drive, daemon=True)
    with Workers(redis_url, "racy", flight) as workers:
        wait_until(lambda: len(workers.finished) > IN_FLIGHT // 10, 30, "the first finishes")
        before = len(workers.finished)
        thread.start()
        wait_until(lambda: driver.state is not None, 60, "the run loaded")
        during = len(workers.finished) - before
        workers.wait_done()
        state = driver.state
        assert state is not None
        wait_until(lambda: all(state.result(n) is not None for n in flight), 30, "every finish applied")
    wait_until(lambda: queue.count >= UNSTARTED, 30, "the unstarted tasks dispatched")
    stop.set()
    thread.join(timeout=30)
    assert during > 50, f"only {during} tasks finished while the run loaded: no race was tested"
    assert all(state.result(n).status is TaskStatus.SUCCESS for n in flight)  # type: ignore[union-attr]
    assert set(queue.get_job_ids()) == {job_id("racy", n, 1) for n in unstarted}, (
        "exactly the tasks that never started are dispatched, each once"
    )


def test_a_read_whose_events_were_trimmed_meanwhile_starts_over(
    redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    half_in_flight(redis_conn, "racy")
    keys = RunKeys("racy")
    redis_conn.xadd(keys.events, {"kind": "status", "status": "running"})
    real_scan = progress.scan_hash
    flood: list[bytes] = []

    def scan_during_a_flood(client: redis.Redis, key: str) -> Iterator[dict[Any, Any]]:
        if key == keys.results and not flood:  # so many events meanwhile that E0 is trimmed away
            flood.append(redis_conn.xadd(keys.events, {"kind": "status"}, maxlen=1, approximate=False))
        yield from real_scan(client, key)

    monkeypatch.setattr(progress, "scan_hash", scan_during_a_flood)
    state = read_progress(redis_conn, "racy")
    assert state.last_event_id == flood[0], "the read started over from the newest event"
    assert "events were trimmed while the run was read" in caplog.text
    assert len(state.dispatch) == IN_FLIGHT


def test_a_busy_redis_makes_the_read_wait_not_fail(fresh_redis: Callable[..., RedisServer]) -> None:
    server = fresh_redis(appendonly=False)
    with redis.Redis.from_url(server.url) as client:
        client.config_set("lua-time-limit", 50)
        flight, _ = half_in_flight(client, "racy")
        with BusyScript(server.url, 0.6):
            started = time.monotonic()
            state = read_progress(client, "racy")
            waited = time.monotonic() - started
    assert waited > 0.3, "the read ran while the script did: it never saw BUSY"
    assert set(state.dispatch) == set(flight)
    assert state.results == {"root": STORED_SUCCESS}
