"""Retention: a finished run's keys expire (real worker, real redis-server); a resume keeps them."""

from __future__ import annotations

import json
import time

import pytest
import redis
from click.testing import CliRunner

from rqdag import Task, TaskRunnerBuilder, TaskStatus, Workflow
from rqdag.cli import main
from rqdag.client import Client
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.rq_jobs import RQ_FAILURE_TTL_S, RQ_RESULT_TTL_S
from rqdag.errors import RqdagError
from rqdag.shared.store.keys import ACTIVE_RUNS, EXPIRING_RUNS, RUNS, RunKeys, job_id
from rqdag.shared.store.resume import resume_run
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import FinishOutcome, Scripts
from tests.integration.flows import recoverable, step
from tests.support.processes import Procs
from tests.support.wait import wait_until

HOUR_MS = 3_600_000


def pair(name: str, retention: str | float | None = None) -> Workflow:
    """``a -> b``, two generic tasks, with the given retention."""
    flow = Workflow(name, retention=retention)
    flow.add(Task("a", step))
    flow.add(Task("b", step, depends_on=["a"]))
    return flow


def drive(conn: redis.Redis, run_id: str, retention_s: float) -> str | None:
    """Coordinate the run here, as ``rqdag run`` does, with a coordinator default retention."""
    return RunDriver(conn, run_id, "test-owner", retention_s=retention_s).drive()


def key_ttls_ms(conn: redis.Redis, run_id: str) -> dict[str, int]:
    """PTTL of every existing key of the run (lease included, which should not exist)."""
    out = {}
    for key in RunKeys(run_id).all():
        ttl = int(conn.pttl(key))
        if ttl != -2:
            out[key] = ttl
    return out


def test_run_end_expires_every_key_and_resume_removes_it(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    client = Client(redis_url)
    conn = client.connection
    rk = RunKeys("ret-1")
    client.submit(recoverable, run_id="ret-1")
    assert drive(conn, "ret-1", 3600) == "failed"
    ttls = key_ttls_ms(conn, "ret-1")
    assert {rk.meta, rk.definition, rk.results, rk.events} <= set(ttls)
    assert rk.lease not in ttls, "the lease is released, not kept for the retention period"
    assert all(HOUR_MS - 60_000 < ttl <= HOUR_MS for ttl in ttls.values()), ttls
    finished_at = RunStore(conn).read_meta("ret-1").finished_at
    assert finished_at is not None
    assert conn.zscore(EXPIRING_RUNS, "ret-1") == finished_at + 3600
    assert not conn.sismember(ACTIVE_RUNS, "ret-1")

    # RQ's own job keys of the run go too: RQ deletes a job RQ_RESULT_TTL_S after it ends well,
    # and an attempt that failed (filed in RQ's failed registry) RQ_FAILURE_TTL_S after it ended
    results = RunStore(conn).read_results("ret-1")
    limits = {
        f"rq:{kind}:{job_id('ret-1', name, attempt)}": (
            RQ_RESULT_TTL_S
            if attempt == result.metrics.attempt and result.status is TaskStatus.SUCCESS
            else RQ_FAILURE_TTL_S
        )
        for name, result in results.items()
        if result.metrics.attempt is not None
        for attempt in range(1, result.metrics.attempt + 1)
        for kind in ("job", "results")
    }
    assert len(limits) == 8  # a, b, d twice (c was skipped: no job): each a job hash and a results stream
    assert RQ_RESULT_TTL_S in limits.values() and RQ_FAILURE_TTL_S in limits.values()

    def jobs_expiring() -> bool:
        return all(0 < int(conn.ttl(job)) <= limit for job, limit in limits.items())

    wait_until(jobs_expiring, 10, "every RQ job of the run to have its result or failure TTL")

    conn.hset(rk.meta, "params", b'{"fixed": true}')
    client.resume("ret-1")
    assert set(key_ttls_ms(conn, "ret-1").values()) == {-1}, "a resumed run no longer expires"
    assert conn.zscore(EXPIRING_RUNS, "ret-1") is None
    assert drive(conn, "ret-1", 3600) == "succeeded"
    ttls = key_ttls_ms(conn, "ret-1")
    assert rk.audit in ttls, "the resume's audit stream expires with the run"
    assert all(HOUR_MS - 60_000 < ttl <= HOUR_MS for ttl in ttls.values()), ttls


def test_workflow_retention_overrides_the_coordinator_default(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    procs.coordinator(redis_url, "--retention", "1h")
    client = Client(redis_url)
    handles = {
        "default": client.submit(pair("by-default"), run_id="ret-default"),
        "own": client.submit(pair("own", retention="2h"), run_id="ret-own"),
        "forever": client.submit(pair("forever", retention=0), run_id="ret-forever"),
    }
    for handle in handles.values():
        handle.wait(timeout=30)
        assert handle.status().status == "succeeded"
    conn = client.connection

    def ttls_of(run_id: str) -> set[int]:
        return set(key_ttls_ms(conn, run_id).values())

    wait_until(lambda: -1 not in ttls_of("ret-default"), 10, "the coordinator to set the expiry")
    assert all(HOUR_MS - 60_000 < t <= HOUR_MS for t in ttls_of("ret-default"))
    wait_until(lambda: -1 not in ttls_of("ret-own"), 10, "the coordinator to set the expiry")
    assert all(2 * HOUR_MS - 60_000 < t <= 2 * HOUR_MS for t in ttls_of("ret-own"))
    assert ttls_of("ret-forever") == {-1}
    assert conn.zscore(EXPIRING_RUNS, "ret-forever") is None


def test_expired_run_leaves_no_key_and_no_listing(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    client = Client(redis_url)
    conn = client.connection
    client.submit(pair("brief", retention="1s"), run_id="ret-brief")
    client.submit(pair("kept"), run_id="ret-kept")
    assert drive(conn, "ret-brief", 3600) == "succeeded"
    assert drive(conn, "ret-kept", 3600) == "succeeded"
    wait_until(lambda: not conn.exists(RunKeys("ret-brief").meta), 10, "the short-lived run to expire")
    assert conn.keys("rqdag:run:{ret-brief}*") == []
    listed = CliRunner().invoke(main, ["runs", "--redis", redis_url, "--json"], env={"REDIS_URL": None})
    assert listed.exit_code == 0, listed.output
    assert [row["run_id"] for row in json.loads(listed.output)] == ["ret-kept"]
    assert conn.zscore(RUNS, "ret-brief") is None, "listing forgot the expired run"
    assert [m.run_id for m in client.runs()] == ["ret-kept"]


def test_sweep_forgets_expired_runs_without_a_listing(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    client = Client(redis_url)
    conn = client.connection
    client.submit(pair("brief"), run_id="ret-swept")
    assert drive(conn, "ret-swept", 0.5) == "succeeded"
    wait_until(lambda: not conn.exists(RunKeys("ret-swept").meta), 10, "the run to expire")
    assert conn.zscore(RUNS, "ret-swept") is not None
    assert RunStore(conn).sweep_expired() == 1
    assert conn.zscore(RUNS, "ret-swept") is None
    assert conn.zscore(EXPIRING_RUNS, "ret-swept") is None


def test_task_runner_with_redis_applies_its_retention(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    runner = TaskRunnerBuilder().with_redis(redis_url).with_run_id("ret-inline").with_retention("45m").build()
    results = runner.execute(pair("inline"))
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    ttls = key_ttls_ms(redis.Redis.from_url(redis_url), "ret-inline").values()
    assert ttls and all(45 * 60_000 - 60_000 < t <= 45 * 60_000 for t in ttls)


def test_run_command_takes_retention(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    proc = procs.spawn(
        "run",
        "tests.integration.test_retention:brief_flow",
        "--redis",
        redis_url,
        "--run-id",
        "ret-cli",
        "--retention",
        "30m",
        "--json",
        name="run",
    )
    assert proc.wait(timeout=60) == 0, procs.log("run")
    ttls = key_ttls_ms(redis.Redis.from_url(redis_url), "ret-cli").values()
    assert ttls and all(30 * 60_000 - 60_000 < t <= 30 * 60_000 for t in ttls)


def test_bad_retention_is_refused_naming_it() -> None:
    result = CliRunner().invoke(main, ["coordinator", "--redis", "redis://x", "--retention", "soon"])
    assert result.exit_code == 2
    assert "retention" in result.output and "'soon'" in result.output


brief_flow = pair("brief-cli")


def test_a_late_finish_does_not_bring_back_an_expired_run(redis_conn: redis.Redis) -> None:
    rk = RunKeys("ret-gone")
    reply = Scripts.register(redis_conn).finish_task(
        rk,
        task="a",
        token="token-1",
        result=b'{"status": "success"}',
        status="success",
        final=True,
        now=time.time(),
        inline=False,
    )
    assert reply is FinishOutcome.STALE
    assert redis_conn.keys("rqdag:*") == [], "a refused finish of a run that is gone writes nothing"


def test_a_run_about_to_expire_is_not_resumed(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn)
    store.create_run(pair("ending"), run_id="ret-ending")
    redis_conn.hset(RunKeys("ret-ending").meta, mapping={"status": "failed", "finished_at": time.time()})
    for key in RunKeys("ret-ending").retained():
        redis_conn.pexpire(key, 400)
    with pytest.raises(RqdagError, match="'ret-ending' is expiring"):
        resume_run(store, "ret-ending")
    assert redis_conn.hget(RunKeys("ret-ending").meta, "status") == b"failed"
