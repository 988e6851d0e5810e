"""Shared fixtures, built on :mod:`tests.support`: real redis-servers and real processes, never mocks.

- ``redis_server``: one server per session on a free TCP port (AOF on).
- ``redis_url`` / ``redis_conn``: that server, flushed before each test.
- ``fresh_redis``: a factory of private servers, for tests that kill or restart one.
- ``procs``: starts rqdag workers, coordinators and other children; all stopped after the test
  (``procs_env`` adds environment variables to every child; override it where needed).
- ``--long``: run chaos tests at full length (see the ``long_mode`` fixture).

Children never inherit an ignored SIGINT (see ``pytest_configure``): the CLI tests send them Ctrl-C.
Nor do they, or the CLI run in-process, see a terminal size in ``COLUMNS`` / ``LINES``: the
tests read the CLI's output off a terminal at its own width (see ``pytest_configure``).

When no server can be started the tests that need one are skipped locally and
fail in CI (any non-empty ``CI`` environment variable).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis

from rqdag.local.redis_server import RedisServer
from tests.support.processes import Procs
from tests.support.redis import private_redis

TERMINAL_SIZE = ("COLUMNS", "LINES")


def pytest_configure(config: pytest.Config) -> None:
    """Undo an ignored SIGINT (pytest started as a background job), so children start with the
    default; and drop the terminal size from the environment.

    Children inherit an ignored signal, and a Python child ignoring SIGINT never sees the
    Ctrl-C the CLI tests send it; a handler, unlike SIG_IGN, is reset to the default on exec.

    pytest imports ``readline`` at start-up, and GNU readline exports the terminal's size as
    ``COLUMNS`` and ``LINES`` (80 and 24 when there is none) into the process's C environment,
    not ``os.environ``. pytest-xdist's workers inherit them in ``os.environ``, and the CLI takes
    ``COLUMNS`` as the width of its tables: its output was cut at 80 columns there, not in a
    serial run. Off a terminal the CLI's width is its own; a test that needs another one sets it
    (a pseudo-terminal of a known size).
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in TERMINAL_SIZE:
        os.environ.pop(name, None)
        os.unsetenv(name)  # also when only the C environment has it (children started with env=None)


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A throwaway redis-server for the whole session, on a free TCP port."""
    with private_redis(tmp_path_factory.mktemp("redis-session"), appendonly=True) as server:
        yield server


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
    with ExitStack() as servers:

        def make(**kwargs: Any) -> RedisServer:
            kwargs.setdefault("appendonly", True)
            return servers.enter_context(private_redis(tmp_path_factory.mktemp("redis-fresh"), **kwargs))

        yield make


@pytest.fixture
def procs_env() -> dict[str, str]:
    """More environment variables for every child ``procs`` starts (none here)."""
    return {}


@pytest.fixture
def procs(tmp_path: Path, procs_env: dict[str, str]) -> Iterator[Procs]:
    """Subprocess starter logging to ``tmp_path``; everything it started is stopped after the test."""
    with Procs(tmp_path, extra_env=procs_env) as started:
        yield started
