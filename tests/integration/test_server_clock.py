"""ServerClock: one reading of Redis's clock for many runs' watchdogs, against a real Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from rqdag.coordinator.server_clock import ServerClock
from rqdag.local.redis_server import RedisServer


def _time_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_time", {}).get("calls", 0))


def test_the_clock_reads_redis_at_most_once_a_refresh_and_counts_from_the_server_start(
    redis_conn: redis.Redis,
) -> None:
    clock = ServerClock(redis_conn, refresh_s=0.5)
    before = _time_calls(redis_conn)
    readings = [clock.read() for _ in range(50)]
    assert _time_calls(redis_conn) - before == 1  # fifty checks of many runs, one TIME
    seconds, micros = redis_conn.time()
    assert abs(readings[-1].server_now - (seconds + micros / 1e6)) < 0.1
    assert readings[0].server_now <= readings[-1].server_now  # time goes on between readings
    uptime = float(redis_conn.info("server")["uptime_in_seconds"])
    assert abs(readings[0].since - (readings[0].server_now - uptime)) <= 1.0
    time.sleep(0.6)
    before = _time_calls(redis_conn)
    later = clock.read()
    assert _time_calls(redis_conn) - before == 1  # the refresh is due: read again
    assert later.since == readings[0].since  # uptime's whole seconds do not move the start


def test_after_a_restart_and_a_failed_call_the_clock_counts_from_the_new_start(
    fresh_redis: Callable[..., RedisServer],
) -> None:
    server = fresh_redis()
    client = redis.Redis.from_url(server.url)
    clock = ServerClock(client, refresh_s=60.0)
    time.sleep(1.5)  # the server's start lies well before the restart
    first = clock.read()
    server.restart()
    assert clock.read().since == first.since  # no call failed yet: the reading holds
    clock.forget()  # what a loop does when a call to Redis failed
    after = clock.read()
    assert after.since > first.since + 1.0
    assert abs(after.since - after.server_now) <= 1.0  # the new server started just now


def test_a_user_refused_info_counts_from_the_first_reading_and_stays_there(
    fresh_redis: Callable[..., RedisServer],
) -> None:
    server = fresh_redis()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser("noinfo", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-info"])
    client = redis.Redis.from_url(server.url, username="noinfo", password="pw")
    clock = ServerClock(client, refresh_s=0.2)
    first = clock.read()
    assert abs(first.since - first.server_now) < 0.01
    time.sleep(1.3)
    again = clock.read()
    assert again.server_now > first.server_now + 1.0
    assert again.since == first.since  # silence still counts from then, not from each reading
