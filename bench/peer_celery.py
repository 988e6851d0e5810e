"""Section 6, Celery: a chord 1 -> N -> 1 and a chain, on the suite's Redis.

Workers: one ``celery worker`` with its default prefork pool, concurrency = the
suite's worker count (2), so as many processes run tasks as on each side of
sections 1-3 (plus the pool's parent, which talks to Redis and hands them tasks).
Gossip, mingle and event heartbeats are off (cluster chatter, none of it needed by
one worker); everything else is Celery's default, prefetch multiplier included.

The wide shape is ``root | chord(group(N no-ops), join)``, rqdag's 1 -> N -> 1
(N + 2 tasks); a chord needs a result backend, the same Redis. The chain is
``chain`` of immutable signatures. Completion: ``AsyncResult.ready()`` of the
last task, polled every 5 ms as the raw RQ reference of sections 1 and 2 is.
Not ``AsyncResult.get``: with Celery 5.7 and redis-py 8 its wait on the result
backend's pub/sub kept the bench process busy (16 s of CPU over a 21 s run), CPU
taken from the workers on a small machine.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, chain, chord, group

from bench.chain import per_hop_ms
from bench.config import Config
from bench.drive import BenchError, Timing
from bench.peer_celery_app import KEEP_ON_RESET, NOOP, make_app
from bench.peer_process import PeerWorkers
from bench.peer_runs import bound_s, peer_row, repeat
from bench.server import BenchRedis
from bench.stats import Row
from bench.throughput import rate

PEER = "Celery"
PING_TIMEOUT_S = 0.5
POLL_S = 0.005
WARMUP_WIDTH = 20
CHAIN_NOTE = "each message of a Celery chain carries the signatures of every later task"


def measure(bench: BenchRedis, config: Config, progress: Callable[[str], None]) -> list[Row]:
    """The chord and the chain, on one worker."""
    shape = f"prefork pool, concurrency {config.workers}"
    progress(f"6. peers: Celery, {shape}")
    try:
        wide, chained = _measure(bench, config)
    finally:
        # A Celery AsyncResult is in a reference cycle (its on_ready promise holds it) and its
        # __del__ unsubscribes on the result backend: collect them while the suite's Redis is up.
        gc.collect()
    wide_label = f"root | chord(group of {config.width:,}, join) ({config.width + 2:,} no-ops), {shape}"
    chain_label = f"chain of {config.chain:,} no-ops, {shape}"
    return [
        peer_row(PEER, wide_label, "tasks/s", wide, rate),
        peer_row(PEER, chain_label, "ms/hop", chained, per_hop_ms, CHAIN_NOTE),
    ]


def _measure(bench: BenchRedis, config: Config) -> tuple[list[Timing], list[Timing]]:
    app = make_app(bench.url)
    runs = _Runs(bench, app, bound_s(config))
    try:
        with _workers(bench, app, config.workers) as workers:
            runs.wide(WARMUP_WIDTH)
            wide = repeat(config.reps, lambda: runs.wide(config.width), workers.restart)
            chained = repeat(config.reps, lambda: runs.chained(config.chain), workers.restart)
    finally:
        app.close()
    return wide, chained


def _workers(bench: BenchRedis, app: Celery, concurrency: int) -> PeerWorkers:
    options = {
        "--pool": "prefork",
        "--concurrency": str(concurrency),
        "--loglevel": "WARNING",
        "--hostname": "bench-peer@%h",
    }
    quiet = ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    command = [
        sys.executable,
        "-m",
        "bench.peer_celery_app",
        bench.url,
        *(part for pair in options.items() for part in pair),
        *quiet,
    ]

    def ready() -> bool:
        return bool(app.control.ping(timeout=PING_TIMEOUT_S))

    return PeerWorkers(bench, f"celery-prefork-{concurrency}", command, ready)


class _Runs:
    """Measured runs: a clean Redis (queue bindings kept), apply, then wait for the last result."""

    def __init__(self, bench: BenchRedis, app: Celery, bound_s: float) -> None:
        self.bench = bench
        self.app = app
        self.bound_s = bound_s
        self._results = app.backend.get_key_for_task("*")

    def wide(self, width: int) -> Timing:
        """``root | chord(group(width no-ops), join)``: ``width + 2`` tasks."""
        canvas = chain(self._noop(), chord(group([self._noop() for _ in range(width)]), self._noop()))
        return self._run(canvas, width + 2)

    def chained(self, length: int) -> Timing:
        """A chain of ``length`` no-ops."""
        return self._run(chain([self._noop() for _ in range(length)], app=self.app), length)

    def _noop(self) -> Any:
        return self.app.signature(NOOP, immutable=True)

    def _run(self, canvas: Any, total: int) -> Timing:
        self.bench.reset(keep=(b"rq:worker", b"rqdag:worker", b"rqdag:profile:", *KEEP_ON_RESET))
        t0, cpu0 = time.perf_counter(), time.thread_time()
        result = canvas.apply_async()
        while not result.ready():
            if time.perf_counter() - t0 > self.bound_s:
                done = sum(1 for _ in self.bench.client.scan_iter(match=self._results, count=1000))
                return Timing(self.bound_s, False, done, total, time.thread_time() - cpu0)
            time.sleep(POLL_S)
        seconds = time.perf_counter() - t0
        if not result.successful():
            raise BenchError(f"Celery task {result.id} ended {result.state}: {result.result!r}")
        return Timing(seconds, True, total, total, time.thread_time() - cpu0)
