"""The connection policy: what :func:`rqdag.shared.connect.connect` builds (no server needed)."""

from __future__ import annotations

import resource
import ssl
import time
from typing import Any

import pytest
import redis
from redis.backoff import ExponentialWithJitterBackoff
from rq.connections import get_connection_kwargs

from rqdag.errors import RqdagError
from rqdag.shared import connect as policy
from rqdag.shared.connect import connect


def _kwargs(client: redis.Redis) -> dict[str, Any]:
    return dict(client.connection_pool.connection_kwargs)


def test_a_client_gets_the_timeouts_health_checks_and_pool_size_of_the_policy() -> None:
    client = connect("redis://127.0.0.1:6390/2", pool_size=7)
    kwargs = _kwargs(client)
    assert kwargs["socket_timeout"] == policy.SOCKET_TIMEOUT_S > 5  # longer than redis-py's 5 s
    assert kwargs["socket_connect_timeout"] == policy.CONNECT_TIMEOUT_S
    assert kwargs["health_check_interval"] == policy.HEALTH_CHECK_INTERVAL_S
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
    assert client.connection_pool.max_connections == 7
    assert connect("redis://h").connection_pool.max_connections == policy.DEFAULT_POOL_SIZE
    assert client.get_encoder().decode_responses is False  # RQ shares the client


def test_each_connection_retries_connection_errors_only_with_backoff() -> None:
    connection: Any = connect("redis://127.0.0.1:6390/0", retries=4).connection_pool.make_connection()
    assert connection.retry.get_retries() == 4
    assert isinstance(connection.retry._backoff, ExponentialWithJitterBackoff)
    assert connection.retry._supported_errors == (redis.ConnectionError,)


def test_the_retry_stays_out_of_the_kwargs_that_rqs_spawning_worker_copies() -> None:
    # RQ's spawn worker writes the kwargs into the horse's source with repr(): plain values only.
    kwargs = get_connection_kwargs(connect("redis://u:p@127.0.0.1:6390/0"))
    assert "retry" not in kwargs
    assert eval(repr(kwargs)) == kwargs  # the round trip the horse makes


def test_user_password_and_tls_come_from_the_url() -> None:
    client = connect("rediss://rqdag:s3cret@redis.internal:6380/1?ssl_ca_certs=/etc/ca.pem")
    kwargs = _kwargs(client)
    assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)
    assert (kwargs["username"], kwargs["password"]) == ("rqdag", "s3cret")
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    connection: Any = client.connection_pool.make_connection()
    assert connection.cert_reqs == ssl.CERT_REQUIRED  # the server's certificate is verified
    unix = connect("unix:///tmp/redis.sock?db=3")
    assert issubclass(unix.connection_pool.connection_class, redis.UnixDomainSocketConnection)


def test_the_query_string_wins_over_the_policy() -> None:
    assert _kwargs(connect("redis://h/0?socket_timeout=90"))["socket_timeout"] == 90


def test_the_url_comes_from_redis_url_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-env:6391/0")
    assert _kwargs(connect())["host"] == "from-env"
    monkeypatch.delenv("REDIS_URL")
    with pytest.raises(RqdagError, match="no Redis URL given"):
        connect()


def test_a_pool_of_no_connections_is_refused() -> None:
    with pytest.raises(RqdagError, match="at least one connection"):
        connect("redis://h", pool_size=0)


def test_a_refused_connection_is_retried_and_then_raised_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        connect("redis://127.0.0.1:1/0").ping()  # port 1: nothing listens
    assert time.monotonic() - started < 3


def test_a_blocking_pool_waits_for_a_connection_and_keeps_the_policy() -> None:
    client = connect("redis://u:p@127.0.0.1:6390/0", pool_size=3, blocking=True, pool_timeout=7)
    pool: Any = client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (3, 7)
    assert _kwargs(client)["socket_timeout"] == policy.SOCKET_TIMEOUT_S
    assert pool.make_connection().retry.get_retries() == policy.RETRIES
    kwargs = get_connection_kwargs(client)  # what RQ's spawning worker copies: no pool option
    assert "timeout" not in kwargs and eval(repr(kwargs)) == kwargs
    assert not isinstance(connect("redis://h").connection_pool, redis.BlockingConnectionPool)


def test_the_open_files_limit_is_raised_for_the_connections_up_to_the_hard_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 600:
        pytest.skip(f"needs a finite hard limit of open files of 600 or more, not {hard}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert policy.allow_open_files(400) == 400 + policy.SPARE_FILES
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (400 + policy.SPARE_FILES, hard)
        assert policy.allow_open_files(100) == 400 + policy.SPARE_FILES  # never lowered
        assert not caplog.records
        assert policy.allow_open_files(hard) == hard
        assert "hard limit" in caplog.text
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
