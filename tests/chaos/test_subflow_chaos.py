"""Chaos for child runs and waits: a subflow of 20 tasks and a signalled wait, under SIGKILLs.

The parent run has ``billing`` (a child run of 20 tasks on 3 workers) beside
``approval`` (a wait). The coordinator is SIGKILLed the moment the child run
exists and again mid-child, with the signal sent (through the CLI) while no
coordinator is alive; two workers are SIGKILLed while they run child tasks. The
moments are drawn from a fixed seed. Invariants at the end, from the ledger and
the runs: one child run, created once; no child task started after its success
was stored; the child's final data in the parent's result; the wait completed
once, with the signal's data; both runs succeeded.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from rqdag.client import Client
from rqdag.errors import RqdagError
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AuditKind, TaskStatus
from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from tests.chaos.cluster import Cluster, ClusterSettings, Member
from tests.chaos.subflow_chaos_flow import MODULE, STEPS, child_names, final_names, parent_workflow
from tests.support.cli import invoke
from tests.support.ledger import read_ledger_noting_problems

RUN_ID = "chaos-sub"
CHILD_ID = f"{RUN_ID}.billing"
HEARTBEAT_TIMEOUT_S = 2.0
SIGNAL = {"by": "ops", "ticket": 1313}


class SubflowCluster(Cluster):
    """The chaos cluster, its workers on the subflow workflows' module.

    Each worker sets its own heartbeat limit: a child run is created with the
    default limit (30 s), not its parent's, and a lost attempt would wait that long.
    """

    def _worker_args(self, name: str) -> list[str]:
        args = super()._worker_args(name)
        args[args.index("--tasks") + 1] = MODULE
        return [*args, "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT_S)]


def child_done(store: RunStore) -> int:
    if not store.exists(CHILD_ID):
        return 0
    return sum(1 for r in store.read_results(CHILD_ID).values() if r.status is TaskStatus.SUCCESS)


def drive(
    cluster: Cluster, rng: random.Random, until: Callable[[], bool], what: str, limit_s: float = 60
) -> None:
    """Tend the cluster until ``until()``; fail after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        cluster.tend()
        time.sleep(0.01 + rng.random() * 0.02)


def kill_one(cluster: Cluster, rng: random.Random, role: str, respawn_in: float) -> None:
    alive = cluster.alive(role)
    assert alive, f"no {role} alive to kill"
    cluster.kill(rng.choice(alive), respawn_in=respawn_in)


def kill_busy_worker(cluster: Cluster, store: RunStore, rng: random.Random, respawn_in: float) -> None:
    """SIGKILL a worker inside a child task (waiting up to 10 s for one), replaced later."""

    def busy() -> list[Member]:
        dispatch = store.read_state(CHILD_ID).dispatch
        members = (cluster.by_name(e.worker or "") for e in dispatch.values() if e.state == "running")
        return [m for m in members if m is not None]

    drive(cluster, rng, lambda: bool(busy()), "a worker inside a child task", limit_s=10)
    cluster.kill(rng.choice(busy()), respawn_in=respawn_in)


def run_ids(conn: redis.Redis) -> set[str]:
    found = set()
    for key in conn.scan_iter(match="rqdag:run:{*}:meta"):
        raw = key.decode() if isinstance(key, bytes) else str(key)
        found.add(raw[len("rqdag:run:{") : -len("}:meta")])
    return found


@pytest.mark.chaos
@pytest.mark.timeout(180)
def test_a_subflow_and_a_wait_survive_coordinator_and_worker_kills(
    redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    rng = random.Random(1313)
    ledger = tmp_path / "ledger.jsonl"
    cluster = SubflowCluster(ClusterSettings(redis_url, tmp_path, ledger, workers=3))
    store = RunStore(redis_conn)
    sleeps = {name: round(rng.uniform(0.1, 0.4), 3) for name in child_names()}
    first_worker_kill, second_coordinator_kill, second_worker_kill = sorted(rng.sample(range(3, 17), 3))
    try:
        cluster.start()
        run = Client(redis_url).submit(
            parent_workflow(),
            params={"child_sleep_s": sleeps},
            run_id=RUN_ID,
            heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
        )
        drive(cluster, rng, lambda: store.exists(CHILD_ID), "the child run")
        kill_one(cluster, rng, "coordinator", rng.uniform(0.2, 0.8))  # right after the child started
        child_meta = store.read_meta(CHILD_ID)
        drive(cluster, rng, lambda: child_done(store) >= first_worker_kill, "the first child tasks")
        kill_busy_worker(cluster, store, rng, rng.uniform(0.2, 0.8))
        drive(cluster, rng, lambda: child_done(store) >= second_coordinator_kill, "more child tasks")
        kill_one(cluster, rng, "coordinator", rng.uniform(0.8, 1.5))  # mid-child
        sent = invoke("signal", RUN_ID, "approval", "--data", json.dumps(SIGNAL), "--redis", redis_url)
        assert sent.exit_code == 0, sent.output  # no coordinator alive: the signal is kept
        drive(cluster, rng, lambda: child_done(store) >= second_worker_kill, "more child tasks")
        kill_busy_worker(cluster, store, rng, rng.uniform(0.2, 0.8))
        drive(cluster, rng, lambda: run.status().finished, "the run's end")
        results = store.read_results(RUN_ID)
        assert run.status().status == "succeeded", {n: r.message for n, r in results.items() if r.message}
        check_child(redis_conn, store, child_meta.created_at, ledger)
        check_parent(results, store, ledger)
    finally:
        cluster.stop_all()


def check_child(conn: redis.Redis, store: RunStore, created_at: float, ledger: Path) -> None:
    assert run_ids(conn) == {RUN_ID, CHILD_ID}  # exactly one child run
    meta = store.read_meta(CHILD_ID)
    assert meta.status == "succeeded"
    assert meta.created_at == created_at and meta.epoch == 1  # created once, never started over
    assert store.read_parent(CHILD_ID) == (RUN_ID, "billing", 1)
    results = store.read_results(CHILD_ID)
    assert sorted(results) == sorted(child_names())
    no_start_after_success(results, ledger, CHILD_ID)
    lines, _ = read_ledger_noting_problems(ledger)
    starts = Counter(ln["task"] for ln in lines if ln["run_id"] == CHILD_ID and ln["phase"] == "start")
    assert max(starts.values()) >= 2, "no worker was killed inside a child task"  # the kills did hit


def check_parent(results: dict[str, TaskResult], store: RunStore, ledger: Path) -> None:
    child = store.read_results(CHILD_ID)
    billing = results["billing"]
    assert billing.status is TaskStatus.SUCCESS
    assert billing.data == {name: child[name].data for name in final_names()}
    for name in final_names():  # each final task's data carries its whole chain
        assert billing.data[name]["path"] == [f"{name[:2]}s{s}" for s in range(STEPS)]
    approval = results["approval"]
    assert approval.status is TaskStatus.SUCCESS and approval.data == SIGNAL
    signals = [e for e in read_audit(store, RUN_ID, "approval") if e.get("kind") == AuditKind.SIGNAL]
    assert len(signals) == 1 and signals[0]["data"] == SIGNAL
    with pytest.raises(RqdagError, match="finished already"):
        Client(connection=store.client).signal(RUN_ID, "approval", data={"by": "late"})
    assert store.read_results(RUN_ID)["approval"].data == SIGNAL
    assert results["ship"].data == {"billing": billing.data, "approval": SIGNAL}
    no_start_after_success(results, ledger, RUN_ID, skip={"billing", "approval"})


def no_start_after_success(
    results: dict[str, TaskResult], ledger: Path, run_id: str, skip: set[str] | None = None
) -> None:
    """Every task succeeded, and no attempt of it started after its success was stored."""
    lines, problems = read_ledger_noting_problems(ledger)
    assert problems == []
    for name, result in results.items():
        assert result.status is TaskStatus.SUCCESS, (run_id, name, result.message)
        if skip and name in skip:
            continue
        assert result.metrics.finished_at is not None
        mine = [ln for ln in lines if ln["run_id"] == run_id and ln["task"] == name]
        starts = [ln for ln in mine if ln["phase"] == "start"]
        assert starts, f"{run_id}: {name} never started"
        late = [ln for ln in starts if ln["at"] > result.metrics.finished_at]
        assert late == [], f"{run_id}: {name} started again after its success was stored: {late}"
