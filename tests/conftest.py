"""Shared fixtures: throwaway redis-server processes, never a mock of Redis.

- ``redis_server``: one server per session on a free TCP port (AOF on).
- ``redis_url`` / ``redis_conn``: that server, flushed before each test.
- ``fresh_redis``: a factory of private servers, for tests that kill or restart one.
- ``--long``: run chaos tests at full length (see the ``long_mode`` fixture).

When no server can be started the tests that need one are skipped locally and
fail in CI (any non-empty ``CI`` environment variable).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from rqdag.errors import EmbeddedRedisError
from rqdag.local.redis_server import RedisServer


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--long``."""
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run chaos tests with more iterations and longer durations",
    )


@pytest.fixture(scope="session")
def long_mode(request: pytest.FixtureRequest) -> bool:
    """True when pytest was given ``--long``."""
    return bool(request.config.getoption("--long"))


def start_or_skip(server: RedisServer) -> RedisServer:
    """Start ``server``; skip the test when that fails, or fail it in CI."""
    try:
        server.start()
    except (EmbeddedRedisError, OSError) as exc:
        reason = f"cannot start a redis-server: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A throwaway redis-server for the whole session, on a free TCP port."""
    server = RedisServer(tmp_path_factory.mktemp("redis-session"), appendonly=True)
    try:
        yield start_or_skip(server)
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session server, emptied (FLUSHALL) for this test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session server, emptied for this test, closed after it."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fresh_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RedisServer]]:
    """A factory: ``fresh_redis(**RedisServer kwargs)`` starts a private server; all are
    stopped after the test."""
    servers: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        kwargs.setdefault("appendonly", True)
        server = RedisServer(tmp_path_factory.mktemp("redis-fresh"), **kwargs)
        servers.append(server)
        return start_or_skip(server)

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
