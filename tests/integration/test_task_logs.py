"""``rqdag logs``: what tasks write, captured by real workers into a real Redis, read back by the CLI.

The tasks (:mod:`tests.integration.logged`) write ``logging`` records, stdout
and stderr lines; a worker subprocess captures them per attempt, and the run's
logs stream goes away with the run (prune, retention).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import redis

from rqdag import Workflow
from rqdag.client import Client
from rqdag.coordinator.driver import RunDriver
from rqdag.shared.store.keys import RunKeys
from tests.integration.logged import chatty, flood, flooding
from tests.support.cli import invoke, lines, spawn_cli
from tests.support.processes import Procs, kill_all
from tests.support.wait import wait_until

LOGGED = "tests.integration.logged"

# What one attempt of ``talk`` writes, in order: (stream, level, message).
TALK = [
    ("log", "info", "one: {task} starts attempt {n}"),
    ("stdout", None, "two: to stdout from attempt {n}"),
    ("stderr", None, "three: to stderr from attempt {n}"),
    ("stdout", None, "four: written in parts"),
    ("log", "warning", "five: {task} ends attempt {n}"),
]


def talk_lines(task: str, attempt: int) -> list[tuple[str, str | None, str]]:
    """The lines one attempt of ``talk`` writes."""
    return [(s, level, m.format(task=task, n=attempt)) for s, level, m in TALK]


def drive(conn: redis.Redis, run_id: str, retention_s: float = 3600) -> str | None:
    """Coordinate the run in this process, as ``rqdag run`` does."""
    return RunDriver(conn, run_id, "test-owner", retention_s=retention_s).drive()


def logs_json(url: str, *args: str) -> list[dict[str, object]]:
    """``rqdag logs ARGS --json``: one object per line."""
    result = invoke("logs", *args, "--redis", url, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in lines(result.output)]


def test_logs_shows_logging_stdout_and_stderr_in_order_by_attempt(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, tasks=LOGGED)
    client = Client(redis_url)
    client.submit(chatty, run_id="logs-1", params={"fail_first": ["talk"]})
    assert drive(client.connection, "logs-1") == "succeeded"

    found = logs_json(redis_url, "logs-1", "talk")
    assert [(d["stream"], d["level"], d["message"]) for d in found] == talk_lines("talk", 1) + talk_lines(
        "talk", 2
    )
    assert [d["attempt"] for d in found] == [1] * 5 + [2] * 5, "each attempt's lines are its own"
    assert {d["task"] for d in found} == {"talk"} and {d["run_id"] for d in found} == {"logs-1"}
    assert [d["logger"] for d in found if d["stream"] == "log"] == ["tests.logged"] * 4
    assert all(isinstance(d["at"], float) and d["id"] for d in found)

    first = logs_json(redis_url, "logs-1", "talk", "--attempt", "1")
    assert [(d["stream"], d["level"], d["message"]) for d in first] == talk_lines("talk", 1)

    human = invoke("logs", "logs-1", "talk", "--redis", redis_url)
    assert human.exit_code == 0, human.output
    shown = lines(human.output)
    assert len(shown) == 10
    assert "#1 INFO tests.logged: one: talk starts attempt 1" in shown[0]
    assert "#2 stderr: three: to stderr from attempt 2" in shown[7]

    whole = logs_json(redis_url, "logs-1")
    assert [d["task"] for d in whole] == ["talk"] * 10 + ["after"] * 5, "the run's lines, oldest first"
    assert "two: to stdout from attempt 2" in procs.log("worker"), "the worker's own output still has them"


def test_an_unknown_run_or_task_is_a_clear_error(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, tasks=LOGGED)
    client = Client(redis_url)
    client.submit(chatty, run_id="logs-2")
    assert drive(client.connection, "logs-2") == "succeeded"
    missing = invoke("logs", "logs-nope", "--redis", redis_url)
    assert missing.exit_code == 2 and "no run 'logs-nope'" in missing.output
    typo = invoke("logs", "logs-2", "tlak", "--redis", redis_url)
    assert typo.exit_code == 2 and "run 'logs-2' has no task 'tlak'" in typo.output


def test_follow_streams_a_running_tasks_lines_and_ends_with_the_run(
    redis_url: str, procs: Procs, tmp_path: Path
) -> None:
    procs.worker(redis_url, tasks=LOGGED)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    params = {"gated": ["talk"], "gate_dir": str(tmp_path)}
    handle = client.submit(chatty, run_id="logs-3", params=params)
    follower = spawn_cli("logs", "logs-3", "talk", "--follow", "--json", "--redis", redis_url)
    seen: list[dict[str, object]] = []
    reader = threading.Thread(target=lambda: _read_into(follower, seen), daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(seen) >= 4, 30, "the first four lines of the running task")
        time.sleep(0.3)
        assert handle.status().status == "running"
        assert [d["message"] for d in seen] == [m for _, _, m in talk_lines("talk", 1)[:4]]
        (tmp_path / "logs-3").mkdir()
        (tmp_path / "logs-3" / "talk").touch()
        assert follower.wait(timeout=30) == 0, "--follow ends when the run does"
        reader.join(timeout=5)
    finally:
        kill_all([follower])
    assert handle.status().status == "succeeded"
    assert [d["message"] for d in seen] == [m for _, _, m in talk_lines("talk", 1)]


def _read_into(proc: subprocess.Popen[str], seen: list[dict[str, object]]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        if raw.strip():
            seen.append(json.loads(raw))


def test_an_attempt_over_its_limit_ends_with_a_truncated_mark(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, "--task-log-lines", "50", tasks=LOGGED)
    client = Client(redis_url)
    client.submit(flooding, run_id="logs-4", params={"lines": 300})
    assert drive(client.connection, "logs-4") == "succeeded"
    found = logs_json(redis_url, "logs-4", "flood")
    assert [d["message"] for d in found[:50]] == [f"line {i}" for i in range(50)]
    assert len(found) == 51
    assert found[-1]["stream"] == "truncated"
    assert "50 lines or 262,144 bytes per attempt" in str(found[-1]["message"])
    assert logs_json(redis_url, "logs-4", "quiet") == []
    human = invoke("logs", "logs-4", "flood", "--redis", redis_url)
    assert lines(human.output)[-1].split(" ", 2)[2].startswith("-- output truncated")


def test_a_run_over_its_limit_keeps_its_newest_lines_and_says_so(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, "--run-log-lines", "100", tasks=LOGGED)
    client = Client(redis_url)
    client.submit(flooding, run_id="logs-5", params={"lines": 1000})
    assert drive(client.connection, "logs-5") == "succeeded"
    length = int(client.connection.xlen(RunKeys("logs-5").logs))
    assert 100 <= length < 400, length  # MAXLEN ~: trimmed by whole nodes
    found = logs_json(redis_url, "logs-5")
    assert found[0]["stream"] == "truncated" and found[0]["task"] is None
    assert found[-1]["message"] == "line 999"
    human = invoke("logs", "logs-5", "--redis", redis_url)
    assert lines(human.output)[0].startswith("-- older lines of this run were dropped")


def test_logs_are_deleted_by_prune_and_expire_with_the_run(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, tasks=LOGGED)
    client = Client(redis_url)
    conn = client.connection
    brief = Workflow("brief", retention="1s")
    brief.task(name="flood")(flood)
    client.submit(chatty, run_id="logs-6")
    client.submit(brief, run_id="logs-7", params={"lines": 3})
    assert drive(conn, "logs-6") == "succeeded"
    assert drive(conn, "logs-7") == "succeeded"
    assert conn.exists(RunKeys("logs-6").logs) and conn.exists(RunKeys("logs-7").logs)
    assert 0 < int(conn.pttl(RunKeys("logs-6").logs)) <= 3600 * 1000, "the logs expire with the run"

    wait_until(lambda: not conn.exists(RunKeys("logs-7").meta), 10, "the short-lived run to expire")
    assert not conn.exists(RunKeys("logs-7").logs)

    pruned = invoke("prune", "--older-than", "0", "--redis", redis_url)
    assert pruned.exit_code == 0, pruned.output
    assert not conn.exists(RunKeys("logs-6").meta)
    assert not conn.exists(RunKeys("logs-6").logs)
