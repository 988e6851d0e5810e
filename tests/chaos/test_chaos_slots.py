"""The chaos round on concurrent workers: 2 workers x ``--concurrency 4``, the same faults.

A SIGKILL of such a worker loses up to four attempts at once; the invariants of
:mod:`tests.chaos.invariants` must hold all the same. Smaller than the main
round (150 tasks, half its faults) to keep CI time in check; replay a seed with
``RQDAG_CHAOS_SEED=N pytest tests/chaos/test_chaos_slots.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from rqdag.local.redis_server import RedisServer
from tests.chaos.scenario import Scenario
from tests.chaos.settings import chaos_configs
from tests.chaos.test_chaos import problems_of, report


@pytest.mark.chaos
def test_chaos_on_concurrent_workers(
    fresh_redis: Callable[..., RedisServer], long_mode: bool, tmp_path: Path
) -> None:
    base = chaos_configs(long_mode)[0]
    cfg = replace(
        base,
        tasks=base.tasks // 2,
        workers=2,
        worker_concurrency=4,
        worker_kills=max(base.worker_kills // 2, 1),
        amo_kills=max(base.amo_kills // 2, 1),
        coordinator_kills=max(base.coordinator_kills // 2, 1),
        worker_terms=max(base.worker_terms // 2, 1),
        redis_outages=max(base.redis_outages // 2, 1),
    )
    server = fresh_redis()
    outcome = Scenario(cfg, server, tmp_path / f"seed-{cfg.seed}").run()
    server.stop()
    problems = problems_of(cfg, outcome)
    assert not problems, report(cfg, outcome, problems, long_mode)
