"""Fixtures of the integration tests (real redis-server, real rqdag processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.support.workers import Env


@pytest.fixture
def env(redis_url: str, redis_conn: redis.Redis, tmp_path: Path) -> Env:
    """The session's Redis (flushed) and an empty ledger, for burst workers."""
    return Env(redis_url, redis_conn, tmp_path / "ledger.jsonl")
