"""A full Redis (maxmemory, noeviction) under real workers and a real coordinator.

Every process stays up and says "Redis is out of memory" once; a submit fails in
one line and writes nothing; once memory is freed the runs go on by themselves,
and the ledger shows no attempt ran twice.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from rqdag import Task, TaskStatus, Workflow
from rqdag.client import Client
from rqdag.local.redis_server import RedisServer
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store import keys
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import step
from tests.integration.gated import attempt_starts, held_once, retried_later, starts
from tests.support import REPO
from tests.support.processes import Procs, rqdag_env
from tests.support.wait import wait_until

OOM_LINE = "Redis is out of memory"
CHUNK = b"x" * 256 * 1024
HEADROOM = 2 * 1024 * 1024
PROCESSES = ("busy", "late", "coordinator")


def _fill(client: redis.Redis) -> None:
    """Lower maxmemory to a little above what is used, then append to a filler key until refused."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + HEADROOM)
    for _ in range(1000):
        try:
            client.append("filler", CHUNK)
        except redis.OutOfMemoryError:
            return
    raise AssertionError("Redis never refused a write")


def _oom_lines(procs: Procs, name: str) -> list[str]:
    return [line for line in procs.log(name).splitlines() if OOM_LINE in line]


def _submit(url: str, run_id: str) -> subprocess.CompletedProcess[str]:
    args = ["submit", "tests.integration.gated:held_once", "--redis", url, "--run-id", run_id]
    return subprocess.run(
        [sys.executable, "-m", "rqdag", *args, "--param", "gate=/nonexistent"],
        cwd=REPO,
        env=rqdag_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def _retry_waits(store: RunStore, run_id: str) -> bool:
    entry = store.read_state(run_id).dispatch.get("flaky")
    return entry is not None and entry.state is AttemptState.RETRY_WAIT


def test_a_full_redis_stops_nothing_and_the_runs_go_on_once_memory_is_freed(
    fresh_redis: Callable[..., RedisServer], procs: Procs, tmp_path: Path
) -> None:
    server = fresh_redis(extra_args=["--maxmemory-policy", "noeviction"])
    gate = tmp_path / "gate"
    busy = procs.worker(server.url, name="busy", tasks="tests.integration.gated")
    coordinator = procs.coordinator(server.url)
    client = Client(server.url)
    store = RunStore(client.connection)
    # the coordinator must write while Redis is full: a retry falls due then
    retried = client.submit(retried_later, run_id="oom-retried")
    wait_until(lambda: _retry_waits(store, retried.run_id), 20, "flaky's first attempt to fail")
    # the busy worker is in the middle of a task while Redis is full
    held = client.submit(held_once, params={"gate": str(gate)}, run_id="oom-held")
    wait_until(lambda: starts(procs.ledger_lines())["held"] == 1, 20, "held to start")

    _fill(client.connection)
    late = procs.worker(server.url, name="late", tasks="tests.integration.gated")  # born into it
    refused = _submit(server.url, "oom-refused")
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{OOM_LINE}: " in lines[0], refused.stderr
    assert client.connection.keys("rqdag:run:{oom-refused}*") == [], "a refused submit writes nothing"
    assert client.connection.zscore(keys.RUNS, "oom-refused") is None
    assert not client.connection.sismember(keys.ACTIVE_RUNS, "oom-refused")
    for name in PROCESSES:
        wait_until(lambda name=name: bool(_oom_lines(procs, name)), 15, f"{name} to report the full Redis")
    time.sleep(2)  # more refused writes meanwhile: none may add a line or stop a process
    for proc in (busy, late, coordinator):
        assert proc.poll() is None, "every process rides the full Redis out"

    client.connection.delete("filler")
    gate.touch()
    for run in (held, retried):
        assert {r.status for r in run.wait(timeout=25).values()} == {TaskStatus.SUCCESS}
    ran = attempt_starts(procs.ledger_lines())
    assert ran == {("held", 1): 1, ("after", 1): 1, ("flaky", 1): 1, ("flaky", 2): 1}, ran
    for name in PROCESSES:
        said = _oom_lines(procs, name)
        assert len([line for line in said if "again after" not in line]) == 1, said
    for proc in (busy, late, coordinator):
        assert proc.poll() is None


def test_a_submit_refused_half_way_leaves_no_keys(fresh_redis: Callable[..., RedisServer]) -> None:
    server = fresh_redis()
    admin = redis.Redis.from_url(server.url)
    # may write hashes but not strings: the definition, written after the meta, is refused
    admin.acl_setuser("half", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-set"])
    half = Client(server.url.replace("redis://", "redis://half:pw@"))
    with pytest.raises(redis.ResponseError, match="no permissions"):
        half.submit(Workflow("one", [Task("only", step)]), run_id="half-written")
    assert admin.keys("rqdag:*") == [], "nothing of a run whose creation failed is left"
    Client(server.url).submit(Workflow("one", [Task("only", step)]), run_id="half-written")
    assert RunStore(admin).read_meta("half-written").task_count == 1, "the id is free to use"
