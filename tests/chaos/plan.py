"""The size of a chaos scenario, and its seeded plan of faults.

Faults are planned against the run's progress (the fraction of tasks with a
result), one per stratum of 5%..75% in a seeded order of kinds, so that they
spread over the run whatever the speed of the machine. Redis outages come in
both modes, in a seeded order: ``down`` (stopped and started again on its port,
the AOF kept) and ``frozen`` (SIGSTOP, then SIGCONT).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ChaosConfig:
    """The size of one scenario."""

    seed: int
    tasks: int = 300
    at_most_once: int = 5
    flaky: int = 8
    max_sleep_s: float = 0.2
    workers: int = 3
    worker_concurrency: int = 1  # --concurrency of each worker (slots per process)
    worker_kills: int = 10
    amo_kills: int = 3
    coordinator_kills: int = 6
    worker_terms: int = 2  # SIGTERM of a busy worker: its task is handed back after its grace
    redis_outages: int = 2  # Redis away for outage_s while tasks finish
    outage_s: float = 2.2  # longer than the heartbeat limit: only the watchdog's grace saves them
    shutdown_grace_s: float = 0.05  # below most tasks' length: a SIGTERMed busy worker hands back
    deadline_s: float = 150.0
    stall_s: float = 30.0
    heartbeat_timeout_s: float = 2.0
    lease_ttl_s: float = 2.0
    heartbeat_interval_s: float = 0.5

    @property
    def run_id(self) -> str:
        """The run's id: the seed, readable in Redis and in the logs."""
        return f"chaos-{self.seed}"


@dataclass
class Fault:
    """One planned fault, fired once the run's progress reaches ``threshold``."""

    kind: str  # "worker", "term", "coordinator", "redis" (a restart) or "outage"
    threshold: float  # fraction of tasks with a result
    jitter_s: float  # extra random wait once the threshold is reached
    respawn_s: float  # delay before the victim is replaced
    mode: str = ""  # worker: "any" or "busy"; coordinator: "after" or "overlap"; outage: "down" or "frozen"
    due: float | None = None
    waiting_since: float | None = None


def plan_faults(rng: random.Random, cfg: ChaosConfig) -> list[Fault]:
    """Stratified over 5%..75% of the run, one fault per stratum, kinds in a seeded order."""
    kinds = ["worker"] * cfg.worker_kills + ["coordinator"] * cfg.coordinator_kills + ["redis"]
    kinds += ["term"] * cfg.worker_terms + ["outage"] * cfg.redis_outages
    rng.shuffle(kinds)
    modes = [("down", "frozen")[i % 2] for i in range(cfg.redis_outages)]  # both, once there are two
    rng.shuffle(modes)
    low, high = 0.05, 0.75
    width = (high - low) / len(kinds)
    plan = []
    for i, kind in enumerate(kinds):
        fault = Fault(
            kind=kind,
            threshold=low + width * (i + rng.random()),
            jitter_s=rng.uniform(0.0, 0.3),
            respawn_s=rng.uniform(0.1, 1.0) if kind == "worker" else rng.uniform(0.0, 1.0),
        )
        if kind == "worker":
            fault.mode = rng.choice(("any", "busy"))
        elif kind == "coordinator":
            fault.mode = "overlap" if rng.random() < 0.25 else "after"
        elif kind == "outage":
            fault.mode = modes.pop()
        plan.append(fault)
    return plan
