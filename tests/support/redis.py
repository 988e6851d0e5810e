"""Private redis-servers for tests: started on free ports, stopped after use.

When no server can be started a test is skipped locally and failed in CI (any
non-empty ``CI`` environment variable): CI must never pass by skipping.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from rqdag.errors import EmbeddedRedisError
from rqdag.local.redis_server import RedisServer


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for ``reason``; in CI, fail it instead."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def start_or_skip(server: RedisServer) -> RedisServer:
    """Start ``server``; skip the test when that fails, or fail it in CI."""
    try:
        server.start()
    except (EmbeddedRedisError, OSError) as exc:
        skip_or_fail(f"cannot start a redis-server: {exc}")
    return server


@contextmanager
def private_redis(data_dir: Path, **kwargs: Any) -> Iterator[RedisServer]:
    """A started ``RedisServer(data_dir, **kwargs)`` (see :func:`start_or_skip`), stopped on the way out."""
    server = RedisServer(data_dir, **kwargs)
    try:
        yield start_or_skip(server)
    finally:
        server.stop()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def other_db(url: str) -> str:
    """The same server's database 1 (the URL's database replaced)."""
    return url.rsplit("/", 1)[0] + "/1"
