"""The private redis-server: start, restart, crash, parent death, folder ownership."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rqdag.errors import EmbeddedRedisError
from rqdag.local.embedded import EmbeddedRedis
from rqdag.local.processes import process_alive
from rqdag.local.redis_server import RedisServer, find_redis_server
from tests.support.processes import kill_all, rqdag_env
from tests.support.wait import poll_until

SERVER_SCRIPT = """
import sys, time
from pathlib import Path
from rqdag.local.redis_server import RedisServer
server = RedisServer(Path(sys.argv[1]))
server.start()
print(server.pid, flush=True)
time.sleep(60)
"""

OWNER_SCRIPT = """
import sys, time
from pathlib import Path
import redis
from rqdag.local.embedded import EmbeddedRedis
embedded = EmbeddedRedis(Path(sys.argv[1]))
with redis.Redis.from_url(embedded.start()) as client:
    client.set("survivor", "yes")
print(embedded.server.pid, flush=True)
time.sleep(60)
"""


def get(url: str, key: str) -> bytes | None:
    """Read one key with a short-lived client."""
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        value: bytes | None = client.get(key)
        return value


def put(url: str, key: str, value: str) -> None:
    """Write one key with a short-lived client."""
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        client.set(key, value)


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Wait until process ``pid`` is gone; False when it is still there after ``timeout``."""
    return poll_until(lambda: not process_alive(pid), timeout)


@pytest.fixture
def run_script() -> Iterator[Callable[[str, Path], tuple[subprocess.Popen[str], int]]]:
    """Run a Python script with a folder argument; it prints the redis pid it started.

    Returns the script's process (SIGKILL it) and that pid. Every script is killed
    and reaped after the test.
    """
    procs: list[subprocess.Popen[str]] = []
    env = rqdag_env()

    def run(script: str, folder: Path) -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            assert proc.stderr is not None
            pytest.fail(f"script failed: {proc.stderr.read()}")
        return proc, int(line)

    yield run
    kill_all(procs)


def test_find_redis_server_returns_an_executable() -> None:
    path = find_redis_server()
    assert os.access(path, os.X_OK)
    assert Path(path).name == "redis-server"


def test_tcp_server_answers_on_loopback(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as server:
        assert server.port is not None and server.port > 0
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        put(server.url, "k", "v")
        assert get(server.url, "k") == b"v"
        with redis.Redis.from_url(server.url) as client:
            config = client.config_get("*")
        assert config["bind"] == "127.0.0.1"
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["maxmemory-policy"] == "noeviction"
        assert config["save"] == ""
    assert server.pid is None


def test_unix_socket_server_has_tcp_off(tmp_path: Path) -> None:
    with RedisServer(tmp_path, unix_socket=True) as server:
        assert server.url == f"unix://{tmp_path.resolve() / 'redis.sock'}?db=0"
        put(server.url, "k", "v")
        assert get(server.url, "k") == b"v"
        with redis.Redis.from_url(server.url) as client:
            assert client.config_get("port")["port"] == "0"


def test_long_data_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 100)
    with RedisServer(data_dir, unix_socket=True) as server:
        assert server.socket_path is not None
        assert len(str(server.socket_path)) <= 90
        put(server.url, "k", "v")
        server.restart()
        assert get(server.url, "k") == b"v"
    assert not server.socket_path.exists()


def test_restart_keeps_aof_data_on_the_same_port(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as server:
        url, pid = server.url, server.pid
        put(url, "k", "v")
        server.restart()
        assert server.url == url
        assert server.pid != pid
        assert get(url, "k") == b"v"


def test_kill_then_restart_keeps_aof_data(tmp_path: Path) -> None:
    with RedisServer(tmp_path, unix_socket=True) as server:
        pid = server.pid
        assert pid is not None
        put(server.url, "k", "v")
        server.kill()
        assert server.pid is None
        assert not process_alive(pid)
        server.restart()
        assert get(server.url, "k") == b"v"


def test_stop_and_kill_are_idempotent(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.stop()
    server.kill()
    server.start()
    server.stop()
    server.stop()
    server.kill()
    assert server.pid is None


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra_args=["--no-such-directive", "1"])
    with pytest.raises(EmbeddedRedisError, match="exited with code") as info:
        server.start(timeout=5)
    assert "no-such-directive" in str(info.value)
    assert server.pid is None


def test_fresh_redis_fixture_gives_separate_servers(
    fresh_redis: Callable[[], RedisServer], redis_url: str
) -> None:
    first, second = fresh_redis(), fresh_redis()
    assert len({first.url, second.url, redis_url}) == 3
    put(first.url, "k", "first")
    assert get(second.url, "k") is None


def test_server_dies_with_its_parent(
    tmp_path: Path, run_script: Callable[[str, Path], tuple[subprocess.Popen[str], int]]
) -> None:
    script, redis_pid = run_script(SERVER_SCRIPT, tmp_path)
    assert process_alive(redis_pid)
    script.send_signal(signal.SIGKILL)
    script.wait()
    assert wait_gone(redis_pid), f"redis-server {redis_pid} outlived its parent"


def test_second_owner_of_a_folder_is_refused(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / ".rqdag") as owner:
        with pytest.raises(EmbeddedRedisError, match=r"another rqdag run .* is using"):
            EmbeddedRedis(tmp_path / ".rqdag").start()
        assert get(owner.url, "missing") is None
    with EmbeddedRedis(tmp_path / ".rqdag") as next_owner:
        assert next_owner.url.startswith("unix://")


def test_folder_of_a_killed_owner_starts_cleanly_with_its_data(
    tmp_path: Path, run_script: Callable[[str, Path], tuple[subprocess.Popen[str], int]]
) -> None:
    folder = tmp_path / ".rqdag"
    script, redis_pid = run_script(OWNER_SCRIPT, folder)
    script.send_signal(signal.SIGKILL)
    script.wait()
    with EmbeddedRedis(folder) as embedded:
        assert embedded.server.pid != redis_pid
        assert get(embedded.url, "survivor") == b"yes"
        pid_line = embedded.pidfile.read_text().split()[0]
        assert int(pid_line) == embedded.server.pid
    assert not embedded.pidfile.exists()


def test_leftover_server_of_a_dead_owner_is_stopped_first(tmp_path: Path) -> None:
    folder = tmp_path / ".rqdag"
    with RedisServer(folder / "redis", unix_socket=True) as orphan:
        assert orphan.pid is not None
        put(orphan.url, "k", "v")
        (folder / "redis.pid").write_text(f"{orphan.pid}\n")
        with EmbeddedRedis(folder) as embedded:
            assert not process_alive(orphan.pid)
            assert get(embedded.url, "k") == b"v"


def test_pidfile_naming_another_process_is_ignored(tmp_path: Path) -> None:
    folder = tmp_path / ".rqdag"
    folder.mkdir()
    (folder / "redis.pid").write_text(f"{os.getpid()}\n")
    with EmbeddedRedis(folder) as embedded:
        put(embedded.url, "k", "v")
    assert process_alive(os.getpid())
