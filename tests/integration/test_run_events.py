"""The Redis mode emits the events the in-process runner emits: same kinds, order and payloads.

A real redis-server (the fixtures) and a real rqdag worker in a subprocess; the
coordinator runs inline, in the test's process, through ``TaskRunnerBuilder.with_redis``.
"""

from __future__ import annotations

import threading

from rqdag import TaskResult, TaskRunnerBuilder
from rqdag.client import Client
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.events import EVENT_KINDS, EventBus, RunEvent
from tests.event_trace import RECOVERABLE_KINDS, Trace
from tests.integration.flows import recoverable
from tests.support.processes import Procs


def test_with_redis_emits_what_the_in_process_runner_emits(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    local = Trace()
    in_process = local.listen(TaskRunnerBuilder().with_run_id("events")).build()
    local_results = in_process.execute(recoverable, concurrency=1)
    remote = Trace()
    status_at_end: list[str] = []

    def note_status(event: RunEvent) -> None:
        status_at_end.append(Client(redis_url).run(event.run_id).status().status)

    builder = remote.listen(TaskRunnerBuilder().with_redis(redis_url).with_run_id("events"))
    builder.on("workflow_end", note_status)

    remote_results = builder.build().execute(recoverable, concurrency=1)

    assert remote.kinds() == RECOVERABLE_KINDS
    assert remote.steps() == local.steps()
    assert remote.events[-1].results == remote_results
    assert {n: r.status for n, r in remote_results.items()} == {n: r.status for n, r in local_results.items()}
    assert status_at_end == ["failed"], "workflow_end comes once the run's outcome is in Redis"


def test_with_redis_a_seeded_success_is_announced_with_its_data(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    seed = {"a": TaskResult.success({"n": 41})}
    local, remote = Trace(), Trace()
    in_process = local.listen(TaskRunnerBuilder().with_snapshot(seed).with_run_id("seeded")).build()
    in_process.execute(recoverable, params={"fixed": True}, concurrency=1)
    builder = remote.listen(TaskRunnerBuilder().with_snapshot(seed).with_run_id("seeded"))

    builder.with_redis(redis_url).build().execute(recoverable, params={"fixed": True}, concurrency=1)

    assert remote.steps() == local.steps()
    final = remote.events[-1]
    assert final.kind == "workflow_end" and final.results is not None
    assert final.results["a"] == seed["a"], "the stored success, not the coordinator's stand-in"


def test_a_driver_asked_to_stop_leaves_the_run_without_a_workflow_end(redis_url: str) -> None:
    client = Client(redis_url)
    client.submit(recoverable, run_id="stopped")
    bus = EventBus()
    seen: list[RunEvent] = []
    for kind in EVENT_KINDS:
        bus.on(kind, seen.append)
    stop = threading.Event()
    stop.set()

    outcome = RunDriver(client.connection, "stopped", "c1", events=bus, stop=stop).drive()

    assert outcome is None, "no worker ran 'a': the run is open, for another coordinator"
    assert [(e.kind, e.task) for e in seen] == [("workflow_start", None), ("task_start", "a")]
    assert client.run("stopped").status().status == "running"
