"""The processes of a chaos scenario: rqdag workers and coordinators, killed and replaced.

:class:`Cluster` keeps a pool of workers and coordinators at their target size:
a process the driver SIGKILLs (or stops with SIGTERM) is replaced after the
delay the driver gives, and one that exits on its own (say, when Redis went
away under it) is noted and replaced at once. :meth:`Cluster.stop_all` SIGKILLs
and reaps whatever is left; call it in a ``finally``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.chaos_flow import HOLD_ENV, LEDGER_ENV
from tests.support.processes import kill_all, rqdag_command, rqdag_env, spawn_logged

TASKS_MODULE = "tests.chaos.chaos_flow"


@dataclass
class Member:
    """One process of the cluster."""

    role: str  # "worker" or "coordinator"
    name: str
    proc: subprocess.Popen[bytes]
    started: float
    log: Path
    killed: bool = False  # SIGKILLed (or stopped with SIGTERM) by the driver
    killed_at: float | None = None  # when (wall clock)
    exited: bool = False  # exited on its own (and was replaced)


@dataclass
class ClusterSettings:
    """How the processes are started."""

    url: str
    folder: Path
    ledger: Path
    workers: int = 3
    worker_concurrency: int = 1
    coordinators: int = 1
    lease_ttl_s: float = 2.0
    heartbeat_interval_s: float = 0.5
    shutdown_grace_s: float | None = None  # the workers' --shutdown-grace (None: theirs)
    hold: Path | None = None  # while it exists, tasks with a result wait before they finish (chaos_flow)


@dataclass
class Cluster:
    """Spawns, kills and replaces rqdag processes; records what happened to each."""

    settings: ClusterSettings
    members: list[Member] = field(default_factory=list)
    self_exits: list[tuple[str, int | None]] = field(default_factory=list)
    _respawn_at: list[tuple[float, str]] = field(default_factory=list)
    _counter: int = 0

    # ---- starting -------------------------------------------------------------------

    def start(self) -> None:
        """Start the target number of workers and coordinators."""
        for _ in range(self.settings.workers):
            self.spawn("worker")
        for _ in range(self.settings.coordinators):
            self.spawn("coordinator")

    def spawn(self, role: str) -> Member:
        """Start one ``python -m rqdag worker|coordinator``, its output in ``<folder>/<name>.log``."""
        self._counter += 1
        name = f"chaos-{role[0]}{self._counter:03d}"
        log_path = self.settings.folder / f"{name}.log"
        args = self._worker_args(name) if role == "worker" else self._coordinator_args()
        extra = {LEDGER_ENV: str(self.settings.ledger)}
        if self.settings.hold is not None:
            extra[HOLD_ENV] = str(self.settings.hold)
        env = rqdag_env(**extra)
        proc = spawn_logged(rqdag_command(*args), log_path, env=env)
        member = Member(role, name, proc, time.monotonic(), log_path)
        self.members.append(member)
        return member

    def _worker_args(self, name: str) -> list[str]:
        s = self.settings
        grace = [] if s.shutdown_grace_s is None else ["--shutdown-grace", str(s.shutdown_grace_s)]
        return [
            "worker",
            "--redis",
            s.url,
            "--tasks",
            TASKS_MODULE,
            "--name",
            name,
            "--heartbeat-interval",
            str(s.heartbeat_interval_s),
            *grace,
            "--log-level",
            "info",
            "--concurrency",
            str(s.worker_concurrency),
        ]

    def _coordinator_args(self) -> list[str]:
        s = self.settings
        return ["coordinator", "--redis", s.url, "--lease-ttl", str(s.lease_ttl_s), "--log-level", "info"]

    # ---- faults -----------------------------------------------------------------------

    def alive(self, role: str) -> list[Member]:
        """The members of ``role`` still running."""
        return [m for m in self.members if m.role == role and m.proc.poll() is None]

    def by_name(self, name: str) -> Member | None:
        """The live worker called ``name`` (dispatch entries name the worker)."""
        return next((m for m in self.alive("worker") if m.name == name), None)

    def by_pid(self, pid: int) -> Member | None:
        """The live member with process id ``pid`` (a lease names its coordinator's pid)."""
        return next((m for m in self.members if m.proc.pid == pid and m.proc.poll() is None), None)

    def kill(self, member: Member, *, respawn_in: float | None) -> None:
        """SIGKILL ``member``, reap it, and replace it after ``respawn_in`` seconds (None: not)."""
        member.killed, member.killed_at = True, time.time()
        if member.proc.poll() is None:
            os.kill(member.proc.pid, signal.SIGKILL)
        member.proc.wait()
        if respawn_in is not None:
            self._respawn_at.append((time.monotonic() + respawn_in, member.role))

    def terminate(self, member: Member, *, respawn_in: float) -> None:
        """SIGTERM ``member`` (a warm shutdown: it exits once its grace is over; :meth:`stop_all`
        reaps it) and replace it after ``respawn_in`` seconds."""
        member.killed, member.killed_at = True, time.time()
        member.proc.send_signal(signal.SIGTERM)
        self._respawn_at.append((time.monotonic() + respawn_in, member.role))

    def tend(self) -> None:
        """Replace processes that are due, and those that exited without being killed."""
        now = time.monotonic()
        for member in self.members:
            if not (member.killed or member.exited) and member.proc.poll() is not None:
                member.exited = True  # counted once, replaced once
                self.self_exits.append((member.name, member.proc.returncode))
                self._respawn_at.append((now + 0.2, member.role))
        due = [r for r in self._respawn_at if r[0] <= now]
        self._respawn_at = [r for r in self._respawn_at if r[0] > now]
        for _, role in due:
            self.spawn(role)

    # ---- stopping -----------------------------------------------------------------------

    def stop_all(self) -> None:
        """SIGKILL every process still running and reap them all."""
        self._respawn_at.clear()
        kill_all(member.proc for member in self.members)

    def log_tail(self, member: Member, chars: int = 1500) -> str:
        """The end of what ``member`` printed."""
        try:
            return member.log.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log: {exc})"
