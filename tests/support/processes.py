"""Child processes of tests: ``python -m rqdag ...`` (or any command), output in a log file.

:class:`Procs` starts workers, coordinators and other children of one test and
makes sure none outlives it; :func:`spawn_logged`, :func:`stop_all` and
:func:`kill_all` are its parts, for tests that keep their own list of processes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support import REPO
from tests.support.ledger import LEDGER_ENV, read_ledger

STOP_GRACE_S = 10.0
FLOWS = "tests.integration.flows"


def rqdag_env(ledger: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child rqdag process: the repo importable, no REDIS_URL, the ledger named."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("REDIS_URL", None)
    if ledger is not None:
        env[LEDGER_ENV] = str(ledger)
    env.update(extra)
    return env


def rqdag_command(*args: str) -> list[str]:
    """``python -m rqdag ARGS`` with this interpreter."""
    return [sys.executable, "-m", "rqdag", *args]


def spawn_logged(
    argv: Sequence[str], log: Path, *, env: Mapping[str, str], cwd: Path = REPO, pipe_stdout: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its stderr appended to ``log``, and its stdout too unless ``pipe_stdout``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE if pipe_stdout else out,
            stderr=out if pipe_stdout else subprocess.STDOUT,
        )


def stop_all(procs: Iterable[subprocess.Popen[Any]], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM each process still running, SIGKILL those left after ``grace_s``; all reaped."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_all(procs: Iterable[subprocess.Popen[Any]]) -> None:
    """SIGKILL each process still running; all reaped and their pipes drained."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.communicate()


class Procs:
    """Starts a test's child processes, each logging to ``<folder>/<name>.log``; stops them all.

    Every child gets :func:`rqdag_env` with ``<folder>/ledger.jsonl`` as its ledger
    and ``extra_env`` on top, unless it is given an environment of its own.
    """

    def __init__(self, folder: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.ledger = folder / "ledger.jsonl"
        self._extra_env = dict(extra_env or {})
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def env(self) -> dict[str, str]:
        """The environment children get by default."""
        return rqdag_env(self.ledger, **self._extra_env)

    def start(
        self, argv: Sequence[str], *, name: str, env: Mapping[str, str] | None = None, cwd: Path = REPO
    ) -> subprocess.Popen[bytes]:
        """Any command, its output in ``<folder>/<name>.log``."""
        proc = spawn_logged(argv, self.folder / f"{name}.log", env=env or self.env(), cwd=cwd)
        self._procs.append(proc)
        return proc

    def spawn(self, *args: str, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``python -m rqdag ARGS``, its output in ``<folder>/<name>.log``."""
        return self.start(rqdag_command(*args), name=name, env=env)

    def python(self, code: str, *, name: str) -> subprocess.Popen[bytes]:
        """``python -c CODE`` in the repo, its output in ``<folder>/<name>.log``."""
        return self.start([sys.executable, "-c", code], name=name)

    def worker(
        self, url: str, *extra: str, name: str = "worker", tasks: str = FLOWS
    ) -> subprocess.Popen[bytes]:
        """An rqdag worker on ``url`` (heartbeats every 0.5 s, DEBUG logs)."""
        return self.spawn(
            "worker",
            "--redis",
            url,
            "--tasks",
            tasks,
            "--heartbeat-interval",
            "0.5",
            "--log-level",
            "DEBUG",
            *extra,
            name=name,
        )

    def coordinator(self, url: str, *extra: str, name: str = "coordinator") -> subprocess.Popen[bytes]:
        """An rqdag coordinator service on ``url`` (DEBUG logs)."""
        return self.spawn("coordinator", "--redis", url, "--log-level", "DEBUG", *extra, name=name)

    def log(self, name: str) -> str:
        """What process ``name`` printed."""
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ledger_lines(self) -> list[dict[str, Any]]:
        """Every line the tasks wrote."""
        return read_ledger(self.ledger)

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL whatever is left after the grace period; always reaped."""
        stop_all(self._procs)


def runs_ended_here(log: str, status: str = "succeeded") -> set[str]:
    """The runs a coordinator's log says it drove to ``status`` ("run 'X' succeeded"), not those
    its DEBUG lines say another coordinator had ended already ("... had already ended (...)")."""
    return set(re.findall(rf"run '([^']+)' {status}$", log, re.M))
