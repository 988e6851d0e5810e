"""Worker processes: rqdag workers and raw RQ SimpleWorkers, started and stopped as pools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from rq import Queue
from rq.worker import Worker

from bench.config import REPO
from bench.counting import read_tally_file
from bench.running import Running
from bench.server import BenchRedis
from rqdag.local.processes import death_signal_hook

Kind = Literal["rqdag", "raw"]

RQDAG_QUEUE = "default"  # the queue of every rqdag task of the benchmarks (Task's default)
RAW_QUEUE = "raw"
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0


class PoolError(RuntimeError):
    """A worker pool did not start, or one of its workers died."""


def child_env() -> dict[str, str]:
    """The environment of a bench child process: the checkout importable, no REDIS_URL."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("REDIS_URL", None)
    return env


def spawn(
    command: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, own_group: bool = False
) -> subprocess.Popen[bytes]:
    """``command`` run in the checkout with :func:`child_env` (and ``env``), its output appended
    to ``log``, killed when the bench dies; ``own_group``: in a process group of its own."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            cwd=REPO,
            env={**child_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
            preexec_fn=death_signal_hook(),
        )


class WorkerPool(Running):
    """``count`` worker processes of one kind on one queue.

    rqdag workers are ``python -m rqdag worker --worker-class simple``; raw ones are
    :mod:`bench.rawworker`. With ``counted`` both run through :mod:`bench.counted`,
    which counts their Redis round trips and commands. ``queue`` and ``extra``
    (more ``rqdag worker`` options) set rqdag workers apart from another pool's.
    """

    def __init__(
        self,
        bench: BenchRedis,
        kind: Kind,
        count: int,
        *,
        counted: bool = False,
        queue: str | None = None,
        extra: Sequence[str] = (),
        concurrency: int = 1,
    ) -> None:
        """``concurrency``: slots per rqdag worker (``--concurrency``; more than 1: the concurrent class)."""
        self.concurrency = concurrency
        self.bench = bench
        self.kind = kind
        self.count = count
        self.counted = counted
        self.queue = queue or (RQDAG_QUEUE if kind == "rqdag" else RAW_QUEUE)
        self.extra = tuple(extra)
        self._logs = bench.workdir / "logs"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._names: list[str] = []
        self._count_files: list[Path] = []

    def _command(self, name: str, count_file: Path) -> list[str]:
        url = self.bench.url
        if self.counted:
            return [sys.executable, "-m", "bench.counted", str(count_file), self.kind, url, self.queue, name]
        if self.kind == "raw":
            return [sys.executable, "-m", "bench.rawworker", url, self.queue, name]
        options = {
            "--redis": url,
            "--tasks": "bench.tasks",
            "--worker-class": "simple",
            "--queues": self.queue,
            "--name": name,
            "--log-level": "WARNING",
            "--concurrency": str(self.concurrency),
        }
        argv = [sys.executable, "-m", "rqdag", "worker", *(part for pair in options.items() for part in pair)]
        return [*argv, *self.extra]

    def start(self) -> None:
        """Spawn the workers and wait until each has registered with RQ."""
        self._logs.mkdir(parents=True, exist_ok=True)
        tag = f"{self.kind}{'-counted' if self.counted else ''}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        for i in range(self.count):
            name = f"bench-{tag}-{i}"
            count_file = self.bench.workdir / f"{name}.count"
            self._procs.append(spawn(self._command(name, count_file), self._logs / f"{name}.log"))
            self._names.append(name)
            self._count_files.append(count_file)
        self._wait_registered()

    def _wait_registered(self) -> None:
        # rqdag workers listen to their capability queue (see rqdag.coordinator.routing), not this one
        queue = Queue(self.queue, connection=self.bench.client) if self.kind == "raw" else None
        wanted = {Worker.redis_worker_namespace_prefix + n for n in self._names}
        deadline = time.monotonic() + START_TIMEOUT_S
        while not wanted <= set(Worker.all_keys(connection=self.bench.client, queue=queue)):
            self.check_alive()
            if time.monotonic() > deadline:
                raise PoolError(f"{self.kind} workers did not register within {START_TIMEOUT_S:g}s")
            time.sleep(0.05)

    def check_alive(self) -> None:
        """Raise PoolError naming the log of a worker that exited."""
        for proc, name in zip(self._procs, self._names, strict=True):
            if proc.poll() is not None:
                log = (self._logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise PoolError(f"worker {name} exited with code {proc.returncode}:\n{log}")

    def tally(self) -> tuple[int, int]:
        """Round trips and commands of all workers so far (counted pools only)."""
        round_trips = commands = 0
        for path in self._count_files:
            rt, cmds = read_tally_file(path)
            round_trips += rt
            commands += cmds
        return round_trips, commands

    def stop(self) -> None:
        """SIGTERM (RQ's warm shutdown), then SIGKILL what is left after a grace period."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self._procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        self._names.clear()

    def restart(self) -> None:
        """Stop the workers at once (SIGKILL) and start fresh ones: after a run that hit its bound."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._procs.clear()
        self._names.clear()
        self._count_files.clear()
        self.bench.reset()  # a killed worker's registration stays behind; it is harmless here
        self.start()
