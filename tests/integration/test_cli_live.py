"""The CLI as real processes: terminals and pipes, live views, Ctrl-C, log lines, exit codes."""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from rqdag.cli.logs import JsonFormatter, TaskContextFilter
from rqdag.client import Client
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import recoverable
from tests.integration.test_cli_support import (
    CHAIN,
    WORKER_TASKS,
    Cluster,
    careful,
    chain,
    cluster,
    noisy_flow,
)
from tests.support.cli import background, lines, on_pty, run_cli, spawn_cli
from tests.support.processes import Procs
from tests.support.redis import free_port, other_db
from tests.support.runs import wait_status
from tests.support.wait import wait_until

__all__ = ["cluster"]

BAR = "━"  # rich's progress bar, and the rule under a table's header


def json_lines(text: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line written whole (a process still running may be
    half-way through writing its last line)."""
    return [json.loads(line) for line in lines(text[: text.rfind("\n") + 1])]


def test_status_is_plain_text_in_a_pipe_and_a_table_on_a_terminal(cluster: Cluster) -> None:
    cluster.finished(recoverable, "live-status")
    piped = run_cli("status", "live-status", "--redis", cluster.url)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout and BAR not in piped.stdout
    assert lines(piped.stdout)[0].split() == ["task", "status", "attempt", "worker", "duration", "message"]
    assert next(r for r in lines(piped.stdout) if r.startswith("b ")).split()[:4] == [
        "b",
        "failure",
        "1",
        "w1",
    ]
    with on_pty("status", "live-status", "--redis", cluster.url) as term:
        assert term.wait() == 0
        shown = term.output
    assert "\x1b[" in shown and BAR in shown and "┃" in shown  # colours, rules
    assert "failure" in shown and "not fixed yet" in shown


def test_watch_follows_a_live_run_on_a_terminal_in_a_pipe_and_as_json(cluster: Cluster) -> None:
    # The run waits in a database no coordinator looks at until the three watchers are
    # attached; then `rqdag run` continues it, with a worker of its own.
    url = other_db(cluster.url)
    handle = Client(url).submit(chain, params={"sleep_s": 0.3}, run_id="live-watch")
    watch = ("watch", "live-watch", "--redis", url)
    with on_pty(*watch) as term, background(*watch) as piped, background(*watch, "--json") as as_json:
        assert piped.stdout is not None and as_json.stdout is not None
        first_plain, first_json = piped.stdout.readline(), as_json.stdout.readline()
        term.wait_for("live-watch")
        driver = run_cli("run", CHAIN, "--redis", url, "--run-id", "live-watch", "--workers", "1", "--json")
        assert driver.returncode == 0, driver.stderr
        plain_out, _ = piped.communicate(timeout=60)
        json_out, _ = as_json.communicate(timeout=60)
        assert term.wait() == 0
        shown = term.output
    assert handle.status().status == "succeeded"
    assert (piped.returncode, as_json.returncode) == (0, 0)
    plain_out, json_out = first_plain + plain_out, first_json + json_out

    updates = json_lines(json_out)
    outcome = updates.pop()
    assert outcome["type"] == "outcome" and outcome["status"] == "succeeded" and outcome["exit_code"] == 0
    assert all(u["type"] == "update" for u in updates) and len(updates) >= 3
    done = [u["done"] for u in updates]
    assert done == sorted(done) and done[-1] == 6
    assert any(item["worker"] and item["state"] == "running" for u in updates for item in u["in_flight"])
    assert any(u["eta_s"] is not None for u in updates)

    plain = lines(plain_out)
    assert len(plain) >= 3 and "\x1b" not in plain_out
    assert "run live-watch pending: 0/6 done, eta ?" in plain_out
    assert "run live-watch running:" in plain_out and "running: s" in plain_out
    assert plain[-1] == "run live-watch (epoch 1): succeeded - 6 success (6 tasks)"

    assert "\x1b[" in shown and BAR in shown and "eta" in shown and "6/6" in shown


def test_ctrl_c_detaches_a_watch_or_cancels_the_run_when_asked_to(cluster: Cluster) -> None:
    handle = cluster.started(chain, "live-detach", sleep_s=1.5)
    watcher = spawn_cli("watch", "live-detach", "--redis", cluster.url)
    assert watcher.stdout is not None
    assert "live-detach running" in watcher.stdout.readline()
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130
    assert err.startswith("detached: run live-detach goes on")
    assert handle.status().status == "running"

    with on_pty("watch", "live-detach", "--redis", cluster.url, "--on-interrupt", "ask") as term:
        term.wait_for("live-detach")
        term.interrupt()
        term.wait_for("Cancel the run, or detach")
        term.send("cancel\n")
        assert term.wait() == 1
        shown = term.output
    assert "cancel requested for run live-detach" in shown
    assert handle.status().status == "cancelled"


def test_run_shows_progress_on_a_terminal_and_asks_on_ctrl_c(fresh_redis: Callable[..., RedisServer]) -> None:
    url = fresh_redis().url
    args = ("run", CHAIN, "--redis", url, "--workers", "1", "--run-id", "run-pty", "--param", "sleep_s=0.6")
    with on_pty(*args) as term:
        term.wait_for("/6", timeout=60)  # the progress bar's counter
        term.interrupt()
        term.wait_for("Cancel the run, or detach")
        term.send("cancel\n")
        assert term.wait() == 1
        shown = term.output
    assert BAR in shown and "cancelling run run-pty" in shown
    assert "run run-pty: cancelled" in re.sub(r"\x1b\[[0-9;]*m", "", shown)


def test_run_in_a_pipe_prints_json_and_no_progress(fresh_redis: Callable[..., RedisServer]) -> None:
    url = fresh_redis().url
    result = run_cli("run", CHAIN, "--redis", url, "--workers", "1", "--run-id", "run-pipe", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["run"]["status"] == "succeeded" and document["counts"]["success"] == 6
    assert BAR not in result.stderr and "\x1b" not in result.stderr


def test_logs_are_json_lines_with_the_run_task_attempt_and_worker(cluster: Cluster) -> None:
    cluster.finished(noisy_flow, "live-logs")
    worker_lines = json_lines(cluster.procs.log("worker"))
    coordinator_lines = json_lines(cluster.procs.log("coordinator"))
    for line in worker_lines + coordinator_lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    task_line = next(line for line in worker_lines if line["logger"] == "tests.noisy")
    assert task_line["message"] == "working on speak"
    assert (task_line["run_id"], task_line["task"], task_line["attempt"], task_line["worker"]) == (
        "live-logs",
        "speak",
        1,
        "w1",
    )
    assert all(line["worker"] == "w1" for line in worker_lines)
    assert any(line["logger"] == "rqdag.coordinator" for line in coordinator_lines)


def test_json_formatter_fields_extra_and_fixed() -> None:
    handler_filter = TaskContextFilter({"worker": "fixed-name"})
    record = logging.LogRecord("rqdag.worker", logging.WARNING, __file__, 1, "run %r late", ("r9",), None)
    record.run_id, record.task, record.attempt = "r9", "t", 3
    assert handler_filter.filter(record)
    body = json.loads(JsonFormatter().format(record))
    assert body["message"] == "run 'r9' late" and body["level"] == "warning"
    assert (body["run_id"], body["task"], body["attempt"], body["worker"]) == ("r9", "t", 3, "fixed-name")
    assert body["time"].endswith("Z") and "exc" not in body

    seen: list[logging.LogRecord] = []

    def in_a_run_thread() -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            rec = logging.LogRecord("rqdag.coordinator", logging.ERROR, __file__, 1, "x", (), sys.exc_info())
        TaskContextFilter().filter(rec)
        seen.append(rec)

    thread = threading.Thread(target=in_a_run_thread, name="rqdag-run-nightly-1")
    thread.start()
    thread.join()
    body = json.loads(JsonFormatter().format(seen[0]))
    assert body["run_id"] == "nightly-1" and "task" not in body and "ValueError: boom" in body["exc"]


def test_services_told_not_to_wait_refuse_an_unreachable_redis_in_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args in (("worker", "--tasks", "tests.integration.flows"), ("coordinator",)):
        result = run_cli(*args, "--redis", url, "--wait-for-redis", "0")
        assert result.returncode == 2, result.stderr
        assert lines(result.stderr) == [lines(result.stderr)[0]]
        assert result.stderr.startswith(f"error: cannot reach Redis at {url}: ")


def test_a_watch_waits_for_a_run_that_has_not_started(cluster: Cluster) -> None:
    url = other_db(cluster.url)  # no coordinator there: the run stays pending
    handle = Client(url).submit(chain, run_id="live-pending")
    watcher = spawn_cli("watch", "live-pending", "--redis", url, "--json")
    wait_until(lambda: handle.status().status == "pending", 5, "a pending run")
    assert watcher.stdout is not None
    first = json.loads(watcher.stdout.readline())
    assert (first["status"], first["done"], first["counts"]["pending"], first["eta_s"]) == (
        "pending",
        0,
        6,
        None,
    )
    watcher.send_signal(signal.SIGINT)
    watcher.communicate(timeout=30)
    assert watcher.returncode == 130
    assert handle.status().status == "pending"


def test_an_in_doubt_task_is_inspected_then_resolved_and_the_run_goes_on(
    fresh_redis: Callable[..., RedisServer], procs: Procs
) -> None:
    url = fresh_redis().url
    first = procs.worker(url, name="doomed", tasks=WORKER_TASKS)
    procs.coordinator(url)
    handle = Client(url).submit(careful, params={"sleep_s": 60}, run_id="doubt", heartbeat_timeout_s=1.0)
    store = RunStore(handle.connection)

    def charging() -> bool:
        entry = store.read_state("doubt").dispatch.get("charge")
        return entry is not None and entry.state == "running"

    wait_until(charging, 30, "the charge to run")
    first.send_signal(signal.SIGKILL)
    wait_status(handle, ["blocked"])

    shown = run_cli("inspect", "doubt", "charge", "--redis", url)
    assert shown.returncode == 0 and "in doubt" in shown.stdout and "rqdag resolve" in shown.stdout
    doc = json.loads(run_cli("inspect", "doubt", "charge", "--redis", url, "--json").stdout)
    assert doc["result"]["in_doubt"] is True and doc["result"]["message"].startswith("outcome unknown")
    procs.worker(url, name="second", tasks=WORKER_TASKS)
    why = ("--reason", "the gateway shows the charge")
    resolved = run_cli(
        "resolve", "doubt", "charge", "--status", "success", "--data", '{"n": 42}', *why, "--redis", url
    )
    assert resolved.returncode == 0, resolved.stderr
    watched = run_cli("watch", "doubt", "--redis", url, "--json")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert json.loads(lines(watched.stdout)[-1])["status"] == "succeeded"
    receipt = json.loads(run_cli("inspect", "doubt", "receipt", "--redis", url, "--json").stdout)
    assert receipt["status"] == "success"
    audit = json.loads(run_cli("inspect", "doubt", "charge", "--redis", url, "--json").stdout)["audit"]
    assert [a["kind"] for a in audit] == ["resolve"] and audit[0]["previous"]["in_doubt"] is True
