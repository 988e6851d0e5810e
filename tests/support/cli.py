"""The CLI three ways: in-process through click's runner, as a child in pipes, on a pseudo-terminal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner, Result

from rqdag.cli import main
from tests.support import REPO
from tests.support.processes import kill_all, rqdag_command, rqdag_env
from tests.support.wait import wait_until

_TERMINAL_OVERRIDES = ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """``rqdag ARGS`` in-process through click's runner (not a terminal); REDIS_URL unset."""
    return CliRunner().invoke(
        main, list(args), env={"REDIS_URL": None, **(env or {})}, catch_exceptions=False
    )


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of an rqdag child: repo importable, no colour or width overrides."""
    env = rqdag_env()
    for name in _TERMINAL_OVERRIDES:
        env.pop(name, None)
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python -m rqdag ARGS`` with stdout and stderr in pipes (not a terminal)."""
    return subprocess.run(
        rqdag_command(*args),
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn_cli(*args: str, cwd: Path = REPO) -> subprocess.Popen[str]:
    """``python -m rqdag ARGS`` in the background, stdout and stderr in pipes."""
    return subprocess.Popen(
        rqdag_command(*args),
        cwd=cwd,
        env=cli_env(),
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
        kill_all([proc])


class PtyCli:
    """``python -m rqdag ARGS`` on a pseudo-terminal (stdin, stdout and stderr), 120 columns."""

    def __init__(self, *args: str, cwd: Path = REPO, columns: int = 120) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.proc = subprocess.Popen(
            rqdag_command(*args),
            cwd=cwd,
            env=cli_env(TERM="xterm-256color"),
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
        kill_all([self.proc])
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
