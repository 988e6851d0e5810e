"""Routing (pure): which capability queue a job goes to, and when it is held saying why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import redis

from rqdag.coordinator.routing import Router
from rqdag.shared.store.keys import capability_queue
from rqdag.shared.store.workers import Fleet, WorkerInfo, profile_of


def _worker(name: str, functions: tuple[str, ...], queues: tuple[str, ...] = ("default",)) -> WorkerInfo:
    profile = profile_of(functions)
    return WorkerInfo(
        name=name,
        host="h",
        pid=1,
        queues=queues,
        rq_queues=tuple(capability_queue(q, profile) for q in queues),
        worker_class="simple",
        modules=("m",),
        profile=profile,
        rqdag_version="0",
        python_version="3",
        started_at=0.0,
        heartbeat_limit_s=15.0,
        functions=functions,
    )


def _router(*workers: WorkerInfo) -> Router:
    fleet = Fleet(workers, {w.profile: frozenset(w.functions) for w in workers})

    def read(client: redis.Redis, known: Mapping[str, frozenset[str]]) -> Fleet:
        return fleet

    router = Router(cast(redis.Redis, None), "r", read=read)
    router.refresh()
    return router


def test_a_job_goes_only_to_the_capability_queue_of_a_worker_that_has_its_function() -> None:
    tasks = _worker("t", ("mytour.tasks:extract", "mytour.tasks:load"))
    amo = _worker("a", ("mytour.amo:charge",))
    router = _router(tasks, amo)

    assert router.route("default", "mytour.amo:charge", None, "j1").rq_queue == amo.rq_queues[0]
    assert router.route("default", "mytour.tasks:load", None, "j2").rq_queue == tasks.rq_queues[0]
    assert tasks.rq_queues[0] != amo.rq_queues[0]


def test_a_job_no_live_worker_can_run_is_held_naming_the_queue_and_the_function() -> None:
    router = _router(_worker("t", ("mytour.tasks:extract",)), _worker("g", ("mytour.amo:charge",), ("gpu",)))

    held = router.route("default", "mytour.amo:charge", None, "j")
    assert held.rq_queue is None
    assert held.waiting == "no live worker on queue 'default' runs 'mytour.amo:charge'"
    condition = router.route("default", "mytour.tasks:extract", "mytour.tasks:ready", "j")
    assert condition.waiting == "no live worker on queue 'default' runs 'mytour.tasks:ready'"
    assert (
        _router().route("default", "x:y", None, "j").waiting == "no live worker on queue 'default' runs 'x:y'"
    )


def test_jobs_spread_over_every_capable_worker() -> None:
    one = _worker("one", ("m:f",))
    two = _worker("two", ("m:f", "m:g"))
    router = _router(one, two)

    chosen = {router.route("default", "m:f", None, f"job-{i}").rq_queue for i in range(50)}
    assert chosen == {one.rq_queues[0], two.rq_queues[0]}
    assert {router.route("default", "m:g", None, f"job-{i}").rq_queue for i in range(20)} == {
        two.rq_queues[0]
    }


def test_worker_info_json_has_the_documented_fields() -> None:
    body = _worker("t", ("m:f",)).to_dict()

    assert sorted(body) == sorted(
        [
            "name", "host", "pid", "queues", "rq_queues", "worker_class", "modules", "functions", "profile",
            "rqdag_version", "python_version", "started_at", "heartbeat_at", "heartbeat_limit_s", "current",
        ]
    )  # fmt: skip
