"""The chaos test: a 300-task DAG on 3 workers and a coordinator, while the driver SIGKILLs and
replaces workers and coordinators at random moments, stops busy workers with SIGTERM, restarts
Redis once and takes it away twice while tasks finish (stopped, then frozen, in a seeded order).

Replay a seed with ``RQDAG_CHAOS_SEED=N pytest tests/chaos/test_chaos.py`` (add ``--long``
for a long round); ``pytest tests/chaos --long`` runs several rounds with random seeds.
See :mod:`tests.chaos.invariants` for what is checked at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rqdag.local.redis_server import RedisServer
from tests.chaos.invariants import check_run
from tests.chaos.plan import ChaosConfig
from tests.chaos.scenario import Outcome, Scenario
from tests.chaos.settings import SEED_ENV, chaos_configs, is_long


def replay_hint(cfg: ChaosConfig, long_flag: bool) -> str:
    """The command that replays this round."""
    return f"{SEED_ENV}={cfg.seed} pytest tests/chaos/test_chaos.py{' --long' if is_long(long_flag) else ''}"


def problems_of(cfg: ChaosConfig, outcome: Outcome) -> list[str]:
    """Everything wrong with one round: an unfinished run, violated invariants, too few faults."""
    out = list(outcome.ledger_problems)
    if not outcome.finished:
        out.append(f"the run did not finish ({outcome.stop_reason}):\n{outcome.diagnostics}")
    out += check_run(outcome.observed)
    stats = outcome.stats
    if stats.worker_kills < cfg.worker_kills:
        out.append(f"only {stats.worker_kills} worker kills, planned at least {cfg.worker_kills}")
    if stats.coordinator_kills < cfg.coordinator_kills:
        out.append(f"only {stats.coordinator_kills} coordinator kills, planned {cfg.coordinator_kills}")
    if stats.redis_restarts != 1:
        out.append(f"{stats.redis_restarts} Redis restarts, expected exactly 1")
    if stats.worker_terms < cfg.worker_terms:
        out.append(f"only {stats.worker_terms} worker SIGTERMs, planned {cfg.worker_terms}")
    if len(stats.outages) != cfg.redis_outages:
        out.append(f"{len(stats.outages)} Redis outages, planned {cfg.redis_outages}")
    if stats.outages and not any(o.held for o in stats.outages):
        out.append("no Redis outage met a finish step: no task had its result when Redis went away")
    return out


def report(cfg: ChaosConfig, outcome: Outcome, problems: list[str], long_flag: bool) -> str:
    """One round's story: seed, replay command, problems, what the driver did."""
    lines = [
        f"chaos seed {cfg.seed}: {len(problems)} problem(s); replay: {replay_hint(cfg, long_flag)}",
        *(f"  [seed {cfg.seed}] {p}" for p in problems[:60]),
        f"  summary: {json.dumps(outcome.summary(), default=str)}",
        f"  logs and ledger: {outcome.folder}",
        "  timeline:",
        *(f"    {t}" for t in outcome.stats.timeline),
    ]
    return "\n".join(lines)


@pytest.mark.chaos
def test_chaos(fresh_redis: Callable[..., RedisServer], long_mode: bool, tmp_path: Path) -> None:
    failed: list[str] = []
    for cfg in chaos_configs(long_mode):
        print(f"chaos round: seed {cfg.seed} ({cfg.tasks} tasks); replay: {replay_hint(cfg, long_mode)}")
        server = fresh_redis()
        outcome = Scenario(cfg, server, tmp_path / f"seed-{cfg.seed}").run()
        server.stop()
        problems = problems_of(cfg, outcome)
        story = report(cfg, outcome, problems, long_mode)
        print(story)
        if problems:
            failed.append(story)
    assert not failed, "\n\n".join(failed)
