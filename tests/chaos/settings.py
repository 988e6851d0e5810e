"""Which seeds and sizes the chaos test runs, from ``--long`` and the environment.

- default (CI): one round, the fixed seed, 300 tasks, a deadline well under 3 minutes;
- ``--long`` or ``RQDAG_CHAOS_LONG=1``: ``RQDAG_CHAOS_ROUNDS`` rounds (default 3), each
  with a random seed, a DAG twice as big and twice as many faults;
- ``RQDAG_CHAOS_SEED=N``: replay seed N, one round (add ``--long`` to replay a long round).
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

from tests.chaos.plan import ChaosConfig

FIXED_SEED = 1128
SEED_ENV = "RQDAG_CHAOS_SEED"
LONG_ENV = "RQDAG_CHAOS_LONG"
ROUNDS_ENV = "RQDAG_CHAOS_ROUNDS"

SHORT = ChaosConfig(seed=FIXED_SEED)
LONG = replace(
    SHORT,
    tasks=600,
    at_most_once=8,
    flaky=12,
    worker_kills=20,
    amo_kills=6,
    coordinator_kills=12,
    worker_terms=4,
    redis_outages=4,
    deadline_s=300.0,
)
MARGIN_S = 60.0  # set-up, final checks and stopping, per round


def is_long(flag: bool) -> bool:
    """``--long`` was given, or ``RQDAG_CHAOS_LONG`` is set to something other than 0."""
    return flag or os.environ.get(LONG_ENV, "0") not in ("", "0")


def chaos_configs(long_flag: bool) -> list[ChaosConfig]:
    """The rounds to run, each with its seed."""
    base = LONG if is_long(long_flag) else SHORT
    given = os.environ.get(SEED_ENV, "").strip()
    if given:
        return [replace(base, seed=int(given))]
    if not is_long(long_flag):
        return [base]
    rounds = int(os.environ.get(ROUNDS_ENV, "3"))
    seeds = random.SystemRandom()
    return [replace(base, seed=seeds.randrange(1, 1_000_000)) for _ in range(rounds)]


def time_budget_s(long_flag: bool) -> float:
    """The pytest timeout of the chaos test: every round's deadline plus a margin each."""
    if os.environ.get(SEED_ENV, "").strip() or not is_long(long_flag):
        rounds = 1
    else:
        rounds = int(os.environ.get(ROUNDS_ENV, "3"))
    base = LONG if is_long(long_flag) else SHORT
    return rounds * (base.deadline_s + MARGIN_S)
