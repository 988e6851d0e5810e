"""Real rqdag processes for tests: workers and coordinators started through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def rqdag_env(ledger: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child rqdag process: the repo importable, the ledger named."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("REDIS_URL", None)
    if ledger is not None:
        env["RQDAG_TEST_LEDGER"] = str(ledger)
    env.update(extra)
    return env


class Procs:
    """Starts rqdag subprocesses and makes sure none outlives the test."""

    def __init__(self, tmp_path: Path, extra_env: Mapping[str, str] | None = None) -> None:
        """``extra_env``: more variables for every child (say, another ledger's name)."""
        self._tmp = tmp_path
        self._procs: list[subprocess.Popen[bytes]] = []
        self.ledger = tmp_path / "ledger.jsonl"
        self._extra_env = dict(extra_env or {})

    def spawn(self, *args: str, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``python -m rqdag ARGS``, its output in ``<tmp>/<name>.log``."""
        log = (self._tmp / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rqdag", *args],
                cwd=REPO,
                env=env or rqdag_env(self.ledger, **self._extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self._procs.append(proc)
        return proc

    def worker(
        self, url: str, *extra: str, name: str = "worker", tasks: str = "tests.integration.flows"
    ) -> subprocess.Popen[bytes]:
        """An rqdag worker on ``url``."""
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

    def python(self, code: str, *, name: str) -> subprocess.Popen[bytes]:
        """``python -c CODE`` in the repo, its output in ``<tmp>/<name>.log``."""
        log = (self._tmp / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                cwd=REPO,
                env=rqdag_env(self.ledger, **self._extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self._procs.append(proc)
        return proc

    def coordinator(self, url: str, *extra: str, name: str = "coordinator") -> subprocess.Popen[bytes]:
        """An rqdag coordinator service on ``url``."""
        return self.spawn("coordinator", "--redis", url, "--log-level", "DEBUG", *extra, name=name)

    def log(self, name: str) -> str:
        """What process ``name`` printed."""
        path = self._tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ledger_lines(self) -> list[dict[str, Any]]:
        """Every line the tasks wrote."""
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines() if line.strip()]

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL whatever is left; always reaped."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self._procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Subprocess starter; everything it started is stopped after the test."""
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``predicate`` until true; fail the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def successes_ran_once(lines: Sequence[dict[str, Any]], succeeded: Sequence[str]) -> dict[str, int]:
    """Tasks among ``succeeded`` whose ledger shows more than one run: {task: runs}."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line["task"]] = counts.get(line["task"], 0) + 1
    return {t: counts.get(t, 0) for t in succeeded if counts.get(t, 0) != 1}
