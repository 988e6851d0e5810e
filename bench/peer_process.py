"""A peer's worker command as one subprocess (and the processes it forks): started, checked, stopped.

A peer's CLI starts a supervisor that forks its worker processes, so the command
gets a process group of its own and is stopped as a group: SIGTERM (the peers'
warm shutdown), then SIGKILL for whatever is left after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

from bench.pools import START_TIMEOUT_S, STOP_GRACE_S, PoolError, spawn
from bench.running import Running
from bench.server import BenchRedis

READY_POLL_S = 0.1


class PeerWorkers(Running):
    """``command`` running in its own process group until stopped; ``ready()`` says it serves."""

    def __init__(
        self,
        bench: BenchRedis,
        name: str,
        command: Sequence[str],
        ready: Callable[[], bool],
        env: dict[str, str] | None = None,
    ) -> None:
        self.bench = bench
        self.name = name
        self.command = list(command)
        self.ready = ready
        self.env = env or {}
        self.log = bench.workdir / "logs" / f"peer-{name}-{os.getpid()}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Empty Redis (so that ``ready()`` sees only these workers), spawn the command, wait until ready."""
        self.bench.reset()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._proc = spawn(self.command, self.log, env=self.env, own_group=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(grace_s=0)
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise PoolError(f"{self.name} workers not ready within {START_TIMEOUT_S:g}s; see {self.log}")
            time.sleep(READY_POLL_S)

    def check_alive(self) -> None:
        """Raise PoolError with the end of the log when the command has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise PoolError(f"{self.name} workers exited with code {self._proc.returncode}:\n{tail}")

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, then SIGKILL it after ``grace_s``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
        _signal_group(proc.pid, signal.SIGKILL)  # forked workers the supervisor left behind
        proc.wait()

    def restart(self) -> None:
        """Kill the workers at once and start fresh ones: after a run that hit its bound."""
        self.stop(grace_s=0)
        self.start()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
