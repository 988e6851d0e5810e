"""``rqdag dashboard`` as a real process: it serves, says what it is, and stops at once on SIGTERM."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from rqdag.cli import main
from rqdag.client import Client
from tests.support.processes import Procs
from tests.support.redis import free_port
from tests.support.wait import wait_until
from tests.web.conftest import TOKEN
from tests.web.flows import payments


def test_usage_errors_are_one_line_and_exit_2(redis_url: str) -> None:
    runner = CliRunner()
    no_redis = runner.invoke(main, ["dashboard"], env={"REDIS_URL": ""})
    assert no_redis.exit_code == 2 and "no Redis given" in no_redis.output
    short = runner.invoke(main, ["dashboard", "--redis", redis_url, "--token", "short"])
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    port = free_port()
    unreachable = runner.invoke(main, ["dashboard", "--redis", f"redis://127.0.0.1:{port}/0"])
    assert unreachable.exit_code == 2 and "cannot reach Redis" in unreachable.output


def test_it_serves_and_stops_at_once_on_sigterm_with_a_live_view_open(redis_url: str, tmp_path: Path) -> None:
    procs = Procs(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        proc = procs.spawn("dashboard", "--redis", redis_url, "--port", str(port), name="dashboard")
        wait_until(lambda: _up(base), 20, "the dashboard to answer")
        assert "actions need the token" not in procs.log("dashboard")
        assert f"rqdag dashboard on {base}/" in procs.log("dashboard") and "read-only" in procs.log(
            "dashboard"
        )
        with httpx.Client(base_url=base, timeout=10) as http:
            assert "No runs yet" in http.get("/").text
            reply = http.post("/api/runs/x/cancel", headers={"Authorization": f"Bearer {TOKEN}"})
            assert reply.status_code == 403
            Client(redis_url).submit(payments, run_id="cli-live")
            with http.stream("GET", "/api/runs/cli-live/events") as stream:
                next(stream.iter_lines())  # the stream is open
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
        assert time.monotonic() - started < 4, "an open live view does not hold the shutdown"
        assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
        assert "graceful shutdown exceeded" not in procs.log("dashboard"), procs.log("dashboard")
        assert "Traceback" not in procs.log("dashboard"), procs.log("dashboard")
    finally:
        procs.stop_all()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/workers", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
