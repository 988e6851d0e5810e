"""Helpers of the CLI tests (no tests here): a shared cluster, the CLI in-process, in a pipe, in a pty.

``cluster``: one private redis-server, one worker and one coordinator (both
logging JSON) for a whole test module; tests tell their runs apart by run id.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rqdag import Task, TaskContext, Workflow
from rqdag.cli import main
from rqdag.client import Client, RunHandle
from rqdag.local.redis_server import RedisServer
from tests.conftest import start_or_skip
from tests.integration.flows import step
from tests.integration.procs import REPO, Procs, rqdag_env, wait_until


def build_chain(length: int = 6) -> Workflow:
    """``s0 -> s1 -> ...``: each task sleeps ``params['sleep_s']``."""
    flow = Workflow("chain")
    for i in range(length):
        flow.add(Task(f"s{i}", step, depends_on=[f"s{i - 1}"] if i else []))
    return flow


chain = build_chain()


def noisy(ctx: TaskContext) -> int:
    """Logs one line from inside the task, through the standard logging module."""
    logging.getLogger("tests.noisy").info("working on %s", ctx.task)
    return ctx.attempt


noisy_flow = Workflow("noisy")
noisy_flow.add(Task("speak", noisy))

careful = Workflow("careful")  # an at-most-once task (it sleeps params['sleep_s']), then a receipt
careful.add(Task("charge", step, at_most_once=True))
careful.add(Task("receipt", noisy, depends_on=["charge"]))

CHAIN = "tests.integration.test_cli_support:chain"
RECOVERABLE = "tests.integration.flows:recoverable"
WORKER_TASKS = "tests.integration.flows,tests.integration.test_cli_support"


@dataclass
class Cluster:
    """A private Redis with a worker and a coordinator, shared by a test module."""

    url: str
    procs: Procs
    client: Client

    def finished(self, workflow: Workflow, run_id: str, **params: Any) -> RunHandle:
        """Submit ``workflow`` as ``run_id`` and wait for it to end."""
        handle = self.client.submit(workflow, params=params, run_id=run_id)
        handle.wait(timeout=60)
        return handle

    def started(self, workflow: Workflow, run_id: str, **params: Any) -> RunHandle:
        """Submit ``workflow`` and wait until its first task is running."""
        handle = self.client.submit(workflow, params=params, run_id=run_id)
        wait_until(lambda: handle.status().status == "running", 30, f"run {run_id} to start")
        return handle


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One Redis, worker and coordinator for the module; all stopped after it."""
    server = start_or_skip(RedisServer(tmp_path_factory.mktemp("cli-redis"), appendonly=False))
    procs = Procs(tmp_path_factory.mktemp("cli-procs"))
    try:
        procs.worker(server.url, "--log-format", "json", "--name", "w1", name="worker", tasks=WORKER_TASKS)
        procs.coordinator(server.url, "--log-format", "json", "--lease-ttl", "3")
        client = Client(server.url)
        yield Cluster(server.url, procs, client)
        client.connection.close()
    finally:
        procs.stop_all()
        server.stop()


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """``rqdag ARGS`` in-process through click's runner (not a terminal); REDIS_URL unset."""
    return CliRunner().invoke(
        main, list(args), env={"REDIS_URL": None, **(env or {})}, catch_exceptions=False
    )


def child_env(**extra: str) -> dict[str, str]:
    """The environment of an rqdag child: repo importable, no colour or width overrides."""
    env = rqdag_env(**extra)
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    return env


def run_cli(*args: str, timeout: float = 60, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python -m rqdag ARGS`` with stdout and stderr in pipes (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "rqdag", *args],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn_cli(*args: str, cwd: Path = REPO) -> subprocess.Popen[str]:
    """``python -m rqdag ARGS`` in the background, stdout and stderr in pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "rqdag", *args],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def background(*args: str, cwd: Path = REPO) -> Iterator[subprocess.Popen[str]]:
    """:func:`spawn_cli`, killed on the way out if it still runs."""
    proc = spawn_cli(*args, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


class PtyCli:
    """``python -m rqdag ARGS`` on a pseudo-terminal (stdin, stdout and stderr), 120 columns."""

    def __init__(self, *args: str, cwd: Path = REPO, columns: int = 120) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rqdag", *args],
            cwd=cwd,
            env=child_env(TERM="xterm-256color"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._buffer = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO once the child side is closed
                return
            if not chunk:
                return
            self._buffer.extend(chunk)

    @property
    def output(self) -> str:
        """Everything written to the terminal so far."""
        return self._buffer.decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Wait until ``text`` appears on the terminal."""
        wait_until(lambda: text in self.output, timeout, f"{text!r} on the terminal:\n{self.output[-2000:]}")

    def send(self, text: str) -> None:
        """Type ``text``."""
        os.write(self._master, text.encode())

    def interrupt(self) -> None:
        """SIGINT, as Ctrl-C would send."""
        self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float = 60) -> int:
        """The exit code; the output is complete afterwards."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout=5)
        return code

    def close(self) -> None:
        """Kill the child if it still runs, and close the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self._master)


@contextlib.contextmanager
def on_pty(*args: str, cwd: Path = REPO) -> Iterator[PtyCli]:
    """A :class:`PtyCli`, killed and closed on the way out."""
    child = PtyCli(*args, cwd=cwd)
    try:
        yield child
    finally:
        child.close()


def lines(text: str) -> list[str]:
    """Non-empty lines."""
    return [line for line in text.splitlines() if line.strip()]


def wait_status(handle: RunHandle, statuses: Sequence[str], timeout: float = 30) -> None:
    """Wait until the run's status is one of ``statuses``."""
    wait_until(lambda: handle.status().status in statuses, timeout, f"run {handle.run_id} in {statuses}")


def other_db(url: str) -> str:
    """The same server's database 1, where no coordinator or worker of the cluster looks."""
    return url.rsplit("/", 1)[0] + "/1"
