"""Services started while Redis is down wait for it; one-shot commands fail at once."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.errors import RqdagError
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store.wait import wait_for_redis
from tests.integration.startup_flows import short
from tests.support.processes import Procs
from tests.support.redis import free_port
from tests.support.wait import wait_until


def _dead_url() -> tuple[int, str]:
    """A port nothing listens on (yet), and its URL."""
    port = free_port()
    return port, f"redis://127.0.0.1:{port}/0"


def _lines(procs: Procs, name: str) -> list[str]:
    return [line for line in procs.log(name).splitlines() if line.strip()]


def test_services_started_before_redis_come_up_with_it(
    fresh_redis: Callable[..., RedisServer], procs: Procs
) -> None:
    port, url = _dead_url()
    coordinator = procs.coordinator(url)
    worker = procs.worker(url)
    for name in ("coordinator", "worker"):
        wait_until(lambda n=name: "is unreachable" in procs.log(n), 30, f"the {name} to log its wait")
    time.sleep(2.0)
    assert coordinator.poll() is None and worker.poll() is None, "a service gave up on Redis"

    server = fresh_redis(port=port)
    run = Client(server.url).submit(short, run_id="after-outage")
    results = run.wait(timeout=60)
    assert {name: r.status for name, r in results.items()} == dict.fromkeys("abc", TaskStatus.SUCCESS)
    starts = sorted(line["task"] for line in procs.ledger_lines())
    assert starts == ["a", "b", "c"], "each task started once"
    for name in ("coordinator", "worker"):
        assert len([line for line in _lines(procs, name) if "is unreachable; waiting" in line]) == 1
        assert "answered after" in procs.log(name)


@pytest.mark.parametrize("role", ["coordinator", "worker"])
def test_a_bounded_wait_for_redis_gives_up_in_one_clear_line(procs: Procs, role: str) -> None:
    _, url = _dead_url()
    args = ["--wait-for-redis", "1", "--log-level", "info"]
    started = time.monotonic()
    proc = procs.coordinator(url, *args) if role == "coordinator" else procs.worker(url, *args)
    assert proc.wait(timeout=30) == 2
    took = time.monotonic() - started
    out = _lines(procs, role)
    errors = [line for line in out if line.startswith("error: ")]
    assert errors == [out[-1]], out
    assert errors[0].startswith(f"error: cannot reach Redis at {url}: "), out
    assert errors[0].endswith("(still unreachable after waiting 1s)"), out
    assert len([line for line in out if "is unreachable" in line]) == 1, "the wait is logged once"
    assert 1.0 <= took < 10, took


@pytest.mark.parametrize(
    "args",
    [
        ("status", "r1"),
        ("runs",),
        ("submit", "tests.integration.startup_flows:short"),
    ],
)
def test_one_shot_commands_still_fail_at_once(procs: Procs, args: tuple[str, ...]) -> None:
    _, url = _dead_url()
    started = time.monotonic()
    proc = procs.spawn(*args, "--redis", url, name="oneshot")
    assert proc.wait(timeout=30) == 2
    assert time.monotonic() - started < 10
    assert _lines(procs, "oneshot") == [_lines(procs, "oneshot")[0]]
    assert _lines(procs, "oneshot")[0].startswith(f"error: cannot reach Redis at {url}: ")


def test_the_wait_backs_off_doubling_and_stops_at_its_limit() -> None:
    """Driven with a fake clock against a real refused connection: the pauses and the limit."""
    _, url = _dead_url()
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    with redis.Redis.from_url(url) as client, pytest.raises(RqdagError) as gave_up:
        wait_for_redis(client, where=url, limit_s=30, sleep=sleep, clock=lambda: now[0])
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 4.25]
    assert str(gave_up.value).endswith("(still unreachable after waiting 30s)")
    with redis.Redis.from_url(url) as client, pytest.raises(RqdagError) as at_once:
        wait_for_redis(client, where=url, limit_s=0, sleep=sleep, clock=lambda: now[0])
    assert str(at_once.value).startswith(f"cannot reach Redis at {url}: ")
