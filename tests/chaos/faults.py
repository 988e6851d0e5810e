"""The faults of a chaos scenario, fired by :class:`Faults` when the driver says their moment came.

- ``worker``: a worker SIGKILLed (any, or one inside a task), replaced after a delay;
- ``term``: a worker inside a task stopped with SIGTERM (it hands the task back past its grace);
- ``coordinator``: the lease holder SIGKILLed, replaced after it or, now and then, before it;
- ``redis``: Redis restarted once, cleanly (SIGTERM, AOF flushed);
- ``outage``: Redis away for ``outage_s`` just before finish steps: tasks that get their result
  are held back (the hold file of :mod:`tests.chaos.chaos_flow`) until Redis is stopped and
  started again on its port (``down``) or frozen with SIGSTOP (``frozen``);
- and, beside the plan, workers killed while they run an at-most-once task.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from rqdag import TaskResult
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store.records import DispatchEntry
from tests.chaos.cluster import Cluster, Member
from tests.chaos.plan import ChaosConfig, Fault
from tests.support.ledger import read_ledger_noting_problems

OUTAGE_AIM_S = 30.0  # an outage waits this long at most for a finish step to hold back


class Outage(NamedTuple):
    """One Redis outage: how; from when finished tasks were held back to when Redis was back (wall
    clock: every finish step in between met the outage); how many attempts were held then."""

    mode: str
    start: float
    end: float
    held: int


@dataclass
class Stats:
    """What the driver did, and what it saw."""

    worker_kills: int = 0
    amo_kills: int = 0
    worker_terms: int = 0
    coordinator_kills: int = 0
    redis_restarts: int = 0
    redis_restart_s: float = 0.0
    outages: list[Outage] = field(default_factory=list)
    resolved_when_blocked: int = 0
    elapsed_s: float = 0.0
    timeline: list[str] = field(default_factory=list)


@dataclass
class Poll:
    """What one look at Redis showed the driver."""

    status: str
    results: dict[str, TaskResult]
    dispatch: dict[str, DispatchEntry]
    lease: str


class Faults:
    """Fires the planned faults (and the kills aimed at at-most-once tasks), noting each."""

    def __init__(
        self,
        cfg: ChaosConfig,
        server: RedisServer,
        cluster: Cluster,
        rng: random.Random,
        stats: Stats,
        note: Callable[[str], None],
        at_most_once: Collection[str],
        ledger: Path,
    ) -> None:
        self.cfg = cfg
        self.server = server
        self.cluster = cluster
        self.rng = rng
        self.stats = stats
        self._note = note
        self._at_most_once = set(at_most_once)
        self._ledger = ledger
        self._amo_running_since: dict[str, tuple[str, float]] = {}

    def fire(self, fault: Fault, poll: Poll, waited: float) -> bool:
        """Do ``fault`` now if it can be done (``waited``: since its moment came); True when done."""
        if fault.kind == "redis":
            return self._restart_redis()
        if fault.kind == "outage":
            return self._redis_outage(fault, poll, waited)
        if fault.kind == "worker":
            return self._kill_worker(fault, poll, waited)
        if fault.kind == "term":
            return self._term_worker(fault, poll, waited)
        return self._kill_coordinator(fault, poll, waited)

    def _busy_workers(self, poll: Poll, tasks: set[str] | None = None) -> list[tuple[Member, str]]:
        out = []
        for name, entry in sorted(poll.dispatch.items()):
            if entry.state != "running" or (tasks is not None and name not in tasks):
                continue
            member = self.cluster.by_name(entry.worker or "")
            if member is not None:
                out.append((member, name))
        return out

    def _kill_worker(self, fault: Fault, poll: Poll, waited: float) -> bool:
        aim = fault.mode == "busy" and waited < 3.0 and poll.status != "blocked"
        candidates = self._busy_workers(poll) if aim else []
        if not candidates:
            if aim:
                return False  # wait (a little) for a worker to be inside a task
            candidates = [(m, "") for m in self.cluster.alive("worker")]
        if not candidates:
            return False
        victim, task = self.rng.choice(candidates)
        self.cluster.kill(victim, respawn_in=fault.respawn_s)
        self.stats.worker_kills += 1
        self._note(f"SIGKILL worker {victim.name} ({fault.mode}{', running ' + task if task else ''})")
        return True

    def _term_worker(self, fault: Fault, poll: Poll, waited: float) -> bool:
        """SIGTERM a worker inside a task: past its grace it hands the task back, then exits."""
        candidates = self._busy_workers(poll)
        if not candidates and (waited > 5.0 or poll.status == "blocked"):
            candidates = [(m, "") for m in self.cluster.alive("worker")]  # nobody busy for long: any
        if not candidates:
            return False
        victim, task = self.rng.choice(candidates)
        self.cluster.terminate(victim, respawn_in=fault.respawn_s)
        self.stats.worker_terms += 1
        self._note(f"SIGTERM worker {victim.name} ({'running ' + task if task else 'idle'})")
        return True

    def _redis_outage(self, fault: Fault, poll: Poll, waited: float) -> bool:
        """Redis away for ``outage_s`` just as the tasks held back come to their finish steps.

        It waits for a finish step to hold: while none was held it is put off (the hold
        lifted, tried again at a later poll) for up to OUTAGE_AIM_S, so that an outage
        meets a finish however slow the machine; past that, or with the run blocked
        (nothing can finish), it goes ahead with none.
        """
        aim = waited < OUTAGE_AIM_S and poll.status != "blocked"
        if not self._busy_workers(poll) and aim:
            return False
        hold = self.cluster.settings.hold
        assert hold is not None, "a scenario with outages holds finished tasks back (ClusterSettings.hold)"
        held_from = time.time()
        hold.touch()
        try:
            held = self._wait_for_held(held_from)
            if not held and aim:
                self._note(f"Redis outage ({fault.mode}) put off: no finish step held yet")
                return False  # the hold is lifted below; a later poll tries again
            self._note(f"Redis outage ({fault.mode}, {self.cfg.outage_s:g}s) with {held} result(s) held")
            self._take_redis_away(fault.mode, release=lambda: hold.unlink(missing_ok=True))
        finally:
            hold.unlink(missing_ok=True)
        self.stats.outages.append(Outage(fault.mode, held_from, time.time(), held))
        self._note(f"Redis outage ({fault.mode}) over")
        return True

    def _wait_for_held(self, since: float, timeout_s: float = 3.0) -> int:
        """How many attempts ended well since ``since`` (each now waits on the hold); waits up to
        ``timeout_s`` for the first."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines, _ = read_ledger_noting_problems(self._ledger)
            held = sum(1 for x in lines if x.get("outcome") == "ok" and float(x["at"]) >= since)
            if held or time.monotonic() >= deadline:
                return held
            time.sleep(0.05)

    def _take_redis_away(self, mode: str, *, release: Callable[[], None]) -> None:
        """Stop (``down``) or freeze (``frozen``) Redis, ``release()`` the held tasks, wait, bring it back."""
        if mode == "frozen":
            pid = self.server.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                release()
                time.sleep(self.cfg.outage_s)
            finally:
                os.kill(pid, signal.SIGCONT)
            return
        self.server.stop()
        release()
        time.sleep(self.cfg.outage_s)
        self.server.start()

    def aim_at_at_most_once(self, poll: Poll) -> None:
        """Now and then kill the worker of a running at-most-once task (its outcome becomes unknown)."""
        if self.stats.amo_kills >= self.cfg.amo_kills:
            return
        now = time.monotonic()
        running = self._busy_workers(poll, self._at_most_once)
        current = {task: member.name for member, task in running}
        self._amo_running_since = {
            t: since for t, since in self._amo_running_since.items() if current.get(t) == since[0]
        }
        for member, task in running:
            seen = self._amo_running_since.setdefault(task, (member.name, now + self.rng.uniform(0.05, 0.3)))
            if now >= seen[1]:
                self.cluster.kill(member, respawn_in=self.rng.uniform(0.1, 1.0))
                self.stats.worker_kills += 1
                self.stats.amo_kills += 1
                self._note(f"SIGKILL worker {member.name} (running at-most-once {task})")
                return

    def _kill_coordinator(self, fault: Fault, poll: Poll, waited: float) -> bool:
        victim = self._lease_holder(poll.lease)
        if victim is None:
            alive = self.cluster.alive("coordinator")
            if waited < 5.0 or not alive:
                return False  # wait for a coordinator to hold the lease
            victim = self.rng.choice(alive)
        if fault.mode == "overlap":
            self.cluster.spawn("coordinator")
        self.cluster.kill(victim, respawn_in=None if fault.mode == "overlap" else fault.respawn_s)
        self.stats.coordinator_kills += 1
        holder = "lease holder" if poll.lease else "no lease held"
        self._note(f"SIGKILL coordinator {victim.name} ({holder}, {fault.mode})")
        return True

    def _lease_holder(self, lease: str) -> Member | None:
        """The coordinator whose owner id ("host:pid:suffix|fence") holds the lease."""
        try:
            pid = int(lease.rsplit("|", 1)[0].rsplit(":", 2)[1])
        except (IndexError, ValueError):
            return None
        member = self.cluster.by_pid(pid)
        return member if member is not None and member.role == "coordinator" else None

    def _restart_redis(self) -> bool:
        started = time.monotonic()
        self._note("Redis restart (SIGTERM, AOF flushed) begins")
        self.server.restart()
        self.stats.redis_restarts += 1
        self.stats.redis_restart_s = time.monotonic() - started
        self._note(f"Redis back after {self.stats.redis_restart_s:.2f}s")
        return True
