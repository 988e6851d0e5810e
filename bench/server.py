"""The Redis every measurement uses: one fresh ``redis-server`` started by the suite."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from bench.running import Running
from rqdag.local.redis_server import RedisServer, find_redis_server

# Worker registrations survive a reset, so that idle worker pools stay valid between runs.
_KEEP_PREFIX = b"rq:worker"
_KEEP_REGISTRY = (b"rqdag:worker", b"rqdag:profile:")  # rqdag's worker registry: routing needs it
_RESET_BATCH = 2_000
_NOT_CALLS = frozenset({"info", "config"})  # the bench's own reading of the counters


class BenchRedis(Running):
    """A throwaway ``redis-server`` on a free TCP port of 127.0.0.1, and the bench's clients.

    Persistence: append-only file off (``appendonly no``) unless asked; no RDB snapshots.
    """

    def __init__(self, *, appendonly: bool = False) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="rqdag-bench-"))
        self.appendonly = appendonly
        self.server = RedisServer(self.workdir / "redis", appendonly=appendonly)
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return self.server.url

    @property
    def client(self) -> redis.Redis:
        """The bench's own client (resets, polling, counters): never a measured one."""
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, socket_timeout=60)
        return self._client

    def start(self) -> None:
        """Start the server."""
        self.server.start()

    def stop(self) -> None:
        """Close the bench's client, stop the server, delete its folder."""
        if self._client is not None:
            self._client.close()
        self.server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def version(self) -> str:
        """``redis-server`` version, as the server reports it."""
        return str(self.client.info("server").get("redis_version", "?"))

    def reset(self, keep: tuple[bytes, ...] = (_KEEP_PREFIX, *_KEEP_REGISTRY)) -> None:
        """Delete every key but those starting with ``keep`` (worker registrations by default)."""
        batch: list[bytes] = []
        for key in self.client.scan_iter(count=_RESET_BATCH):
            if not key.startswith(keep):
                batch.append(key)
            if len(batch) >= _RESET_BATCH:
                self.client.unlink(*batch)
                batch.clear()
        if batch:
            self.client.unlink(*batch)

    def reset_stats(self) -> None:
        """Zero the server's command counters (CONFIG RESETSTAT)."""
        self.client.config_resetstat()

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the last reset (``INFO commandstats``), calls from Lua included."""
        stats = self.client.info("commandstats")
        out: dict[str, int] = {}
        for key, value in stats.items():
            name = str(key).removeprefix("cmdstat_")
            if name not in _NOT_CALLS and isinstance(value, dict):
                out[name] = int(value.get("calls", 0))
        return out


def redis_server_version() -> str:
    """The version of the ``redis-server`` binary the suite starts."""
    try:
        out = subprocess.run(
            [find_redis_server(), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError as exc:
        return f"unknown ({exc})"
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip() or "unknown"
