"""A full Redis (maxmemory, noeviction) under real workers and a real coordinator.

Every process stays up and says "Redis is out of memory" once; a submit fails in
one line and writes nothing; once memory is freed the run goes on by itself, and
the ledger shows no task ran twice.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store import keys
from tests.integration.gated import held_once, starts
from tests.integration.procs import REPO, Procs, rqdag_env, wait_until

OOM_LINE = "Redis is out of memory"
CHUNK = b"x" * 256 * 1024
HEADROOM = 2 * 1024 * 1024


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
    return [line for line in procs.log(name).splitlines() if OOM_LINE in line and "again" not in line]


def _submit(url: str, run_id: str, gate: Path) -> subprocess.CompletedProcess[str]:
    target = "tests.integration.gated:held_once"
    return subprocess.run(
        [sys.executable, "-m", "rqdag", "submit", target, "--redis", url, "--run-id", run_id]
        + ["--param", f"gate={gate}"],
        cwd=REPO,
        env=rqdag_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_full_redis_stops_nothing_and_the_run_goes_on_once_memory_is_freed(
    fresh_redis: Callable[..., RedisServer], procs: Procs, tmp_path: Path
) -> None:
    server = fresh_redis(extra_args=["--maxmemory-policy", "noeviction"])
    gate = tmp_path / "gate"
    busy = procs.worker(server.url, name="busy", tasks="tests.integration.gated")
    coordinator = procs.coordinator(server.url)
    client = Client(server.url)
    run = client.submit(held_once, params={"gate": str(gate)}, run_id="oom-run")
    wait_until(lambda: starts(procs.ledger_lines())["held"] == 1, 20, "held to start")

    _fill(client.connection)
    late = procs.worker(server.url, name="late", tasks="tests.integration.gated")  # born into a full Redis
    refused = _submit(server.url, "oom-refused", gate)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{OOM_LINE}: " in lines[0], refused.stderr
    assert client.connection.keys("rqdag:run:{oom-refused}*") == [], "a refused submit writes nothing"
    assert client.connection.zscore(keys.RUNS, "oom-refused") is None
    assert not client.connection.sismember(keys.ACTIVE_RUNS, "oom-refused")
    for name in ("busy", "late", "coordinator"):
        wait_until(lambda name=name: bool(_oom_lines(procs, name)), 15, f"{name} to report the full Redis")
    time.sleep(2)  # more failed writes meanwhile: none may add a line or stop a process
    for proc in (busy, late, coordinator):
        assert proc.poll() is None, "every process rides the full Redis out"

    client.connection.delete("filler")
    gate.touch()
    results = run.wait(timeout=20)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    assert starts(procs.ledger_lines()) == {"held": 1, "after": 1}, "no task ran twice"
    for name in ("busy", "late", "coordinator"):
        assert len(_oom_lines(procs, name)) == 1, procs.log(name)
    for proc in (busy, late, coordinator):
        assert proc.poll() is None
