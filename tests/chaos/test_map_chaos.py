"""Chaos for mapped tasks: ~100 children on 3 workers while coordinators and workers are SIGKILLed.

The coordinator is killed the moment the source's success is stored (before or
while it stores the children), and again mid-children; two workers are killed
while they run children. Invariants at the end, from the ledger and the run:
no child starts after its success was stored, every child's data is in the
aggregate in item order, and the stored expansion is the one expansion.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from rqdag.client import Client
from rqdag.shared.model.mapping import parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.store.runs import RunStore
from tests.chaos.cluster import Cluster, ClusterSettings
from tests.chaos.map_chaos_flow import MODULE, mapped_chaos
from tests.support.ledger import read_ledger_noting_problems

COUNT = 100
ITEMS = [f"c{i:03d}" for i in range(COUNT)]
RUN_ID = "chaos-map"


class MapCluster(Cluster):
    """The chaos cluster, its workers on the mapped workflow's module."""

    def _worker_args(self, name: str) -> list[str]:
        args = super()._worker_args(name)
        args[args.index("--tasks") + 1] = MODULE
        return args


def children_done(store: RunStore) -> int:
    return sum(1 for name in store.read_state(RUN_ID).results if parent_of(name) == "child")


def drive(
    cluster: Cluster, store: RunStore, rng: random.Random, until: Callable[[], bool], what: str
) -> None:
    """Tend the cluster until ``until()``; fail after 120 s."""
    deadline = time.monotonic() + 120
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        cluster.tend()
        time.sleep(0.01 + rng.random() * 0.02)


def kill_one(cluster: Cluster, role: str, respawn_in: float) -> None:
    alive = cluster.alive(role)
    assert alive, f"no {role} alive to kill"
    cluster.kill(alive[0], respawn_in=respawn_in)


@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_a_map_of_a_hundred_children_survives_coordinator_and_worker_kills(
    redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    rng = random.Random(1302)
    ledger = tmp_path / "ledger.jsonl"
    cluster = MapCluster(ClusterSettings(redis_url, tmp_path, ledger, workers=3))
    store = RunStore(redis_conn)
    params = {"count": COUNT, "sleep_s": {item: rng.uniform(0.05, 0.25) for item in ITEMS}}
    try:
        cluster.start()
        run = Client(redis_url).submit(mapped_chaos, params=params, run_id=RUN_ID)
        drive(cluster, store, rng, lambda: "items" in store.read_state(RUN_ID).results, "the source")
        kill_one(cluster, "coordinator", 0.3)  # right after the source's success is stored
        drive(cluster, store, rng, lambda: children_done(store) >= 20, "20 children")
        kill_one(cluster, "worker", 0.5)
        drive(cluster, store, rng, lambda: children_done(store) >= 45, "45 children")
        kill_one(cluster, "coordinator", 1.0)  # mid-children
        drive(cluster, store, rng, lambda: children_done(store) >= 70, "70 children")
        kill_one(cluster, "worker", 0.5)
        drive(cluster, store, rng, lambda: run.status().finished, "the run's end")
        results = store.read_results(RUN_ID)
        assert run.status().status == "succeeded", {n: r.message for n, r in results.items() if r.message}
        check_invariants(results, ledger, store)
    finally:
        cluster.stop_all()


def check_invariants(results: dict[str, TaskResult], ledger: Path, store: RunStore) -> None:
    lines, problems = read_ledger_noting_problems(ledger)
    assert problems == []
    children = [f"child[{item}]" for item in ITEMS]
    assert sorted(n for n in results if parent_of(n) == "child") == sorted(children)
    for name in children:
        result = results[name]
        assert result.status is TaskStatus.SUCCESS and result.metrics.finished_at is not None
        late = [
            line
            for line in lines
            if line["task"] == name and line["phase"] == "start" and line["at"] > result.metrics.finished_at
        ]
        assert late == [], f"{name} started again after its success was stored: {late}"
    assert results["child"].data == [results[name].data for name in children]
    assert [row["item"] for row in results["child"].data] == ITEMS
    assert results["total"].data == ITEMS
    assert store.read_expansions(RUN_ID)["child"].keys == ITEMS
