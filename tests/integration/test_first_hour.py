"""The first hour after the first command: what the CLI says, through click's runner and real processes.

Embedded reads, ``rqdag run --workers 0``, a killed ``rqdag run`` and a
coordinator taking a run over run as real subprocesses; the rest through click's
runner against the session's real redis-server.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import redis

from rqdag.client import Client
from rqdag.coordinator.lease import Lease
from rqdag.local.embedded import EmbeddedRedis
from rqdag.shared.model.result import TaskResult
from rqdag.shared.store.scripts import Scripts
from tests.integration.flows import faulty
from tests.support import REPO
from tests.support.cli import cli_env, invoke, lines, run_cli, spawn_cli
from tests.support.ledger import LEDGER_ENV
from tests.support.processes import Procs, kill_all, rqdag_command
from tests.support.runs import store_result
from tests.support.wait import wait_until

SHOP = str(REPO / "examples" / "shop.py")
UNDRIVEN = "no coordinator is driving this run: start `rqdag coordinator`"


def test_status_says_when_no_coordinator_drives_a_run(redis_url: str, redis_conn: redis.Redis) -> None:
    run = Client(redis_url).submit(faulty, run_id="nobody-drives")
    human = invoke("status", run.run_id, "--redis", redis_url)
    assert human.exit_code == 0 and UNDRIVEN in human.stdout, human.stdout
    doc = json.loads(invoke("status", run.run_id, "--redis", redis_url, "--json").stdout)
    assert doc["coordinator"]["lease_owner"] is None
    lease = Lease(redis_conn, Scripts.register(redis_conn), run.run_id, "host:1:abc")
    assert lease.acquire()
    assert UNDRIVEN not in invoke("status", run.run_id, "--redis", redis_url).stdout
    assert (
        json.loads(invoke("status", run.run_id, "--redis", redis_url, "--json").stdout)["coordinator"]
        == {"lease_owner": "host:1:abc", "problem": None}
    )


def test_watch_says_when_no_coordinator_drives_a_run(redis_url: str) -> None:
    run = Client(redis_url).submit(faulty, run_id="watched-alone")
    watcher = spawn_cli("watch", run.run_id, "--redis", redis_url)
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        assert UNDRIVEN in first and "0/6 done" in first, first
    finally:
        kill_all([watcher])


def test_runs_with_no_runs_says_so(redis_url: str) -> None:
    result = invoke("runs", "--redis", redis_url)
    assert result.exit_code == 0
    assert result.stdout == "no runs yet: 'rqdag run' or 'rqdag submit' starts one\n"
    filtered = invoke("runs", "--redis", redis_url, "--status", "failed")
    assert filtered.stdout == "no runs match the filters\n"
    assert json.loads(invoke("runs", "--redis", redis_url, "--json").stdout) == []


def test_usage_errors_are_one_line() -> None:
    for args, reason in [
        (["run"], "error: Missing argument 'TARGET'."),
        (["runs", "--bogus"], "error: No such option '--bogus'."),
        (
            ["run", "x:y", "--param", "novalue"],
            "error: Invalid value for --param: 'novalue' is not key=value",
        ),
        (["frobnicate"], "error: No such command 'frobnicate'."),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(lines(result.stderr)) == 1 and result.stderr.startswith(reason), result.stderr
        assert "--help" in result.stderr and "Usage:" not in result.stderr


def test_graph_snapshot_export_and_cancel_take_json(redis_url: str, tmp_path: Path) -> None:
    run = Client(redis_url).submit(faulty, run_id="jsonly")
    drawn = json.loads(invoke("graph", run.run_id, "--redis", redis_url, "--json").stdout)
    assert {"name": "b", "depends_on": ["a"], "status": None} in drawn["tasks"]
    target = json.loads(invoke("graph", f"{SHOP}:nightly", "--json").stdout)
    assert [t["name"] for t in target["tasks"]][:2] == ["load_orders", "check_stock"]
    out = tmp_path / "jsonly.json"
    exported = invoke("snapshot", "export", run.run_id, "--redis", redis_url, "-o", str(out), "--json")
    assert json.loads(exported.stdout) == {"run_id": "jsonly", "output": str(out), "results": 0}
    assert json.loads(out.read_text())["run"]["run_id"] == "jsonly"
    cancelled = json.loads(invoke("cancel", run.run_id, "--redis", redis_url, "--json").stdout)
    assert cancelled == {"run_id": "jsonly", "cancel_requested": True, "reason": "cancelled by request"}


def test_the_embedded_run_can_be_read_after_it_ended(tmp_path: Path) -> None:
    ran = run_cli("run", f"{SHOP}:nightly", "--run-id", "shop-1", "--param", "day=2026-11-28", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert re.search(r'^daily_report: \{"day": "2026-11-28", "orders": 5, ', ran.stdout, re.M), ran.stdout
    reads = {
        "runs": run_cli("runs", cwd=tmp_path),
        "status": run_cli("status", "shop-1", cwd=tmp_path),
        "inspect": run_cli("inspect", "shop-1", "check_stock", "--json", cwd=tmp_path),
        "export": run_cli("snapshot", "export", "shop-1", cwd=tmp_path),
        "graph": run_cli("graph", "shop-1", cwd=tmp_path),
    }
    for name, done in reads.items():
        assert done.returncode == 0, (name, done.stderr)
    assert re.search(r"^shop-1\s+shop-nightly\s+succeeded\s+6/6", reads["runs"].stdout, re.M), reads[
        "runs"
    ].stdout
    assert (
        "run shop-1 (epoch 1): succeeded" in reads["status"].stdout and UNDRIVEN not in reads["status"].stdout
    )
    assert json.loads(reads["inspect"].stdout)["attempts"] == 2
    assert json.loads(reads["export"].stdout)["results"]["daily_report"]["status"] == "success"
    assert "flowchart TD" in reads["graph"].stdout
    assert not (tmp_path / ".rqdag" / "redis.pid").exists(), "each read stops the server it started"
    whole = run_cli("run", f"{SHOP}:nightly", "--run-id", "shop-2", "--show-data", cwd=tmp_path)
    assert 'daily_report: {\n  "day": "2026-11-28",\n' in whole.stdout, whole.stdout


def test_reading_with_no_redis_and_no_embedded_store_says_what_to_do(tmp_path: Path) -> None:
    done = run_cli("status", "r1", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: no Redis given: pass --redis URL or set REDIS_URL (no embedded store"
    )
    assert not (tmp_path / ".rqdag").exists()


def test_run_with_no_workers_on_the_embedded_default_says_nothing_will_run_them(tmp_path: Path) -> None:
    args = ("run", f"{SHOP}:nightly", "--run-id", "idle", "--workers", "0", "--timeout", "1.5")
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert "warning: --workers 0 on the embedded Redis: nothing will run the tasks" in done.stderr, (
        done.stderr
    )
    inspected = json.loads(run_cli("inspect", "idle", "load_orders", "--json", cwd=tmp_path).stdout)
    assert inspected["status"] == "cancelled" and inspected["attempts"] == 0, inspected
    assert re.fullmatch(
        r"cancelled before it started: run timed out after 1\.\d+s", inspected["result"]["message"]
    )
    status = run_cli("status", "idle", cwd=tmp_path).stdout
    assert re.search(r"^check_stock\s+cancelled\s+cancelled before it started", status, re.M), status


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_the_workers_of_a_killed_run_exit_quietly(tmp_path: Path) -> None:
    err = tmp_path / "terminal.txt"
    flows = REPO / "tests" / "integration" / "flows.py"
    with err.open("wb") as terminal:
        proc = subprocess.Popen(
            rqdag_command("run", f"{flows}:faulty", "--param", "slow_s=30"),
            cwd=tmp_path,
            env=cli_env(**{LEDGER_ENV: str(tmp_path / "ledger.jsonl")}),
            stdout=terminal,
            stderr=terminal,
        )
    try:
        ledger = tmp_path / "ledger.jsonl"
        wait_until(
            lambda: ledger.exists() and '"phase": "start"' in ledger.read_text(), 30, "a slow task to start"
        )
        # the embedded server's socket: in the folder, or under the temp folder when that path is
        # too long for a socket (as a deeper tmp_path, pytest-xdist's, makes it)
        socket = str(EmbeddedRedis(tmp_path / ".rqdag").server.socket_path)
        assert len(_processes_mentioning(socket)) >= 3  # Redis and two workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: not _processes_mentioning(socket), 10, "the orphans to exit")
    finally:
        kill_all([proc])
    said = err.read_text()
    assert "Traceback" not in said and "ERROR" not in said and "WARNING" not in said, said


def test_a_coordinator_logs_whom_it_took_a_run_over_from(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url)
    first = procs.coordinator(redis_url, "--lease-ttl", "2", name="first")
    run = Client(redis_url).submit(faulty, run_id="taken-over", params={"slow_s": 4})
    wait_until(
        lambda: "run 'taken-over': coordinator" in procs.log("first"), 30, "the first to drive the run"
    )
    owner = re.search(r"run 'taken-over': coordinator (\S+) drives it \(fence 1\)", procs.log("first"))
    assert owner, procs.log("first")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    procs.coordinator(redis_url, name="second")
    taken = "run 'taken-over': coordinator "
    wait_until(lambda: "took it over" in procs.log("second"), 30, "the second to take the run over")
    line = next(x for x in procs.log("second").splitlines() if taken in x and "took it over" in x)
    assert line.endswith(f"took it over from {owner.group(1)} (fence 2)"), line
    run.wait(timeout=60)
    assert run.status().status == "succeeded"


def test_inspect_tells_a_resolution_as_a_sentence(redis_url: str, redis_conn: redis.Redis) -> None:
    run = Client(redis_url).submit(faulty, run_id="resolved")
    store_result(redis_conn, run.run_id, "m", TaskResult.failure("outcome unknown: worker lost"))
    resolved = invoke(
        "resolve",
        run.run_id,
        "m",
        "--status",
        "success",
        "--reason",
        "the ledger shows it",
        "--redis",
        redis_url,
    )
    assert resolved.exit_code == 0, resolved.output
    shown = invoke("inspect", run.run_id, "m", "--redis", redis_url).stdout
    audit = next(line for line in shown.splitlines() if line.startswith("audit: "))
    assert re.fullmatch(
        r"audit: \S+@\S+ resolved m as success on \d{4}-\d\d-\d\d at \d\d:\d\d:\d\d UTC because the ledger "
        r"shows it; it was failure \(outcome unknown: worker lost\)",
        audit,
    ), audit


BROKEN = """
from rqdag import Task, Workflow
from tests.integration.flows import step

flow = Workflow("loop", [Task("a", step, depends_on=["b"]), Task("b", step, depends_on=["a"])])
"""


def test_rqdag_run_checks_its_input_before_it_starts_the_embedded_redis(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    for args, reason in [
        (("run", "broken.py:flow"), "cycle"),
        (("run", f"{SHOP}:nightly", "--param", "x=NaN"), "NaN"),
        (("run", f"{SHOP}:nightly", "--run-id", "bad id"), "invalid run id"),
    ]:
        done = run_cli(*args, cwd=tmp_path)
        assert done.returncode == 2 and reason in done.stderr, (args, done.stderr)
        assert len(lines(done.stderr)) == 1, done.stderr
        assert not (tmp_path / ".rqdag").exists(), f"{args}: a Redis was started for nothing"
