"""A coordinator service rides out a Redis that answers BUSY (another client's long script).

The service runs in-process so that the BUSY episode can be started at the one
moment that matters: as a driver begins to take its run over. Redis is real and
so is the BUSY reply; the worker is a real process, started once the script is
gone (what a worker does under BUSY is not tested here).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.service import CoordinatorService
from rqdag.local.redis_server import RedisServer
from tests.integration.busy import BusyScript
from tests.integration.flows import fifty
from tests.support.processes import Procs
from tests.support.wait import wait_until


def test_a_driver_that_meets_busy_backs_off_and_takes_the_run_again(
    fresh_redis: Callable[..., RedisServer],
    procs: Procs,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = fresh_redis(appendonly=False)
    client = Client(server.url)
    client.connection.config_set("lua-time-limit", 50)
    run = client.submit(fifty, params={"sleep_s": 0.0}, run_id="busy")
    real_start = RunDriver._start
    episodes: list[BusyScript] = []

    def start_under_busy(driver: RunDriver) -> Any:
        if not episodes:  # the first takeover meets a Redis busy for a second
            episodes.append(BusyScript(server.url, 1.0).__enter__())
        return real_start(driver)

    monkeypatch.setattr(RunDriver, "_start", start_under_busy)
    caplog.set_level(logging.DEBUG, logger="rqdag.coordinator")
    with redis.Redis.from_url(server.url) as connection:
        service = CoordinatorService(connection, poll_s=0.2)
        thread = threading.Thread(target=service.serve, daemon=True)
        thread.start()
        try:
            wait_until(lambda: bool(episodes), 30, "a driver meeting BUSY")
            episodes[0].__exit__()
            procs.worker(server.url)
            results = run.wait(timeout=60)
        finally:
            service.stop()
            thread.join(timeout=30)
    client.connection.close()
    assert all(r.status is TaskStatus.SUCCESS for r in results.values()) and len(results) == 50
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum(line.startswith("Redis refuses commands: BUSY") for line in lines) == 1, lines
    assert any(line.startswith("Redis accepts commands again") for line in lines), lines
    assert not [line for line in lines if "Redis error" in line], "a busy Redis is no error of the run"
