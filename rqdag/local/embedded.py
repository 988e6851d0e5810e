"""The persistent private Redis of ``rqdag run`` when no Redis URL is given.

``EmbeddedRedis`` keeps one :class:`~rqdag.redis_server.RedisServer` with AOF in a
folder (``./.rqdag/`` by default), owned by one process at a time through a file lock.
Reading commands (``rqdag status``, ``runs``, ...) given no Redis use
:meth:`EmbeddedRedis.reading`: the server of the ``rqdag run`` that holds the
folder, or one started for the command and stopped after it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Self

from rqdag.errors import EmbeddedRedisError
from rqdag.local.processes import process_alive, start_time, terminate_pid
from rqdag.local.redis_server import RedisServer

__all__ = ["EmbeddedRedis"]


def _is_redis_server(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return b"redis-server" in argv0


class EmbeddedRedis:
    """The persistent private Redis of a folder (default ``./.rqdag/``).

    ``start()`` takes an exclusive lock on ``folder/lock`` for as long as this
    object runs, stops a redis-server left behind by a previous owner that died,
    and starts a unix-socket server with AOF in ``folder/redis/``, so a run that
    was killed finds its data again in the next run in the same folder.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else Path.cwd() / ".rqdag"
        self.server = RedisServer(self.folder / "redis", unix_socket=True, appendonly=True)
        self.pidfile = self.folder / "redis.pid"  # pid and start time of the server
        self._lock_file: IO[str] | None = None

    @property
    def url(self) -> str:
        """The Redis URL of the private server."""
        return self.server.url

    def start(self, timeout: float = 10.0) -> str:
        """Lock the folder, clear stale state, start the server; return its URL."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._stop_previous_server()
            self.server.start(timeout)
            pid = self.server.pid
            assert pid is not None
            self.pidfile.write_text(f"{pid} {start_time(pid)}\n")
        except BaseException:
            self.server.kill()
            self._unlock()
            raise
        return self.url

    @property
    def exists(self) -> bool:
        """Tell whether the folder holds a store (a run was started in it)."""
        return (self.folder / "redis").is_dir()

    @contextmanager
    def reading(self, timeout: float = 10.0) -> Iterator[str]:
        """The URL of the folder's server for one command: the live one, or one started until the end.

        While an ``rqdag run`` holds the folder its server answers; otherwise the
        server is started on the folder's data for the body and stopped after it.
        """
        if not self.exists:
            raise EmbeddedRedisError(f"no embedded store in {self.folder} ('rqdag run' makes one)")
        if self._held_elsewhere():
            yield self.url
            return
        self.start(timeout)
        try:
            yield self.url
        finally:
            self.stop()

    def _held_elsewhere(self) -> bool:
        """Tell whether another process holds the folder's lock (its server is up)."""
        try:
            with (self.folder / "lock").open("a+") as probe:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False  # closing the probe released it

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server, remove the pidfile and release the lock. Idempotent."""
        if self._lock_file is None:
            return
        self.server.stop(timeout)
        self.pidfile.unlink(missing_ok=True)
        self._unlock()

    def _lock(self) -> None:
        if self._lock_file is not None:
            raise EmbeddedRedisError(f"{self.folder} is already started by this object")
        lock_file = (self.folder / "lock").open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "unknown"
            lock_file.close()
            raise EmbeddedRedisError(
                f"another rqdag run (pid {holder}) is using {self.folder}: wait for it to "
                "end, or give a Redis URL"
            ) from None
        except BaseException:
            lock_file.close()
            raise
        lock_file.truncate(0)
        lock_file.write(f"{os.getpid()}\n")
        lock_file.flush()
        self._lock_file = lock_file

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def _stop_previous_server(self) -> None:
        try:
            fields = self.pidfile.read_text().split()
            pid = int(fields[0])
        except (OSError, ValueError, IndexError):
            self.pidfile.unlink(missing_ok=True)
            return
        started = fields[1] if len(fields) > 1 else ""
        same_process = not started or started == start_time(pid)
        if process_alive(pid) and _is_redis_server(pid) and same_process:
            try:
                terminate_pid(pid)
            except OSError:
                raise EmbeddedRedisError(f"could not stop the previous redis-server (pid {pid})") from None
        self.pidfile.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
