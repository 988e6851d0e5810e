"""Section 6, Dramatiq: a group of no-op messages and a pipeline, on the suite's Redis.

Workers: Dramatiq's own CLI (``python -m dramatiq``), as many processes as the
suite's worker count (2) with 1 thread each, then with 8 threads each; default
middleware, JSON encoder and prefetch (2 messages per thread).

Completion: nothing is added to the task or the broker. The bench waits with
``RedisBroker.join``, Dramatiq's own wait for a queue to be empty: a message
leaves the broker's message hash only when a worker acks it after running it,
and a pipeline enqueues its next message before it acks the current one. The
wait polls every 5 ms, as the raw RQ reference of sections 1 and 2 does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import QueueJoinTimeout

from bench.chain import per_hop_ms
from bench.config import Config
from bench.drive import Timing
from bench.peer_dramatiq_app import ACTOR, QUEUE, URL_ENV, make_broker
from bench.peer_process import PeerWorkers
from bench.peer_runs import bound_s, peer_row, repeat
from bench.server import BenchRedis
from bench.stats import Row
from bench.throughput import rate

PEER = "Dramatiq"
THREADS = (1, 8)  # per worker process; processes: the suite's worker count
# A pipeline nests every later message in the first one's JSON: past about 495
# messages the encoder hits Python's default recursion limit. 200 is the length of
# the figure usually quoted for Dramatiq ("a pipeline of 200: 1.23 s").
PIPELINE_MAX = 200
POLL_MS = 5
PREFETCH_NOTE = (
    "with 1 thread a worker process prefetches 2 messages, and its consumer sleeps 5-10 ms "
    "(Dramatiq's backoff) each time it finds its prefetch full"
)
WARMUP_MESSAGES = 20
HEARTBEATS = "dramatiq:__heartbeats__"  # one member per broker (process) that has talked to Redis


def measure(bench: BenchRedis, config: Config, progress: Callable[[str], None]) -> list[Row]:
    """The group at every thread count, and the pipeline on one thread per process."""
    broker = make_broker(bench.url)
    runs = _Runs(bench, broker, bound_s(config))
    rows: list[Row] = []
    try:
        for threads in THREADS:
            shape = f"{_count(config.workers, 'process', 'es')} x {_count(threads, 'thread', 's')}"
            progress(f"6. peers: Dramatiq, {shape}")
            with _workers(bench, config.workers, threads) as workers:
                runs.warm_up()
                group = repeat(config.reps, lambda: runs.group(config.width), workers.restart)
                label = f"group of {config.width:,} no-ops, {shape}"
                note = PREFETCH_NOTE if threads == 1 else ""
                rows.append(peer_row(PEER, label, "tasks/s", group, rate, note))
                if threads == 1:
                    rows.append(_pipeline_row(runs, config, workers, shape))
    finally:
        broker.client.connection_pool.disconnect()
    return rows


@contextmanager
def group_runs(
    bench: BenchRedis, config: Config, processes: int, threads: int
) -> Iterator[Callable[[int], Timing]]:
    """Dramatiq workers (``processes`` x ``threads``, warmed up) and a function that times one group.

    Section 11 alternates these runs with rqdag's, for its ratio to Dramatiq in one run.
    """
    broker = make_broker(bench.url)
    runs = _Runs(bench, broker, bound_s(config))
    try:
        with _workers(bench, processes, threads):
            runs.warm_up()
            yield runs.group
    finally:
        broker.client.connection_pool.disconnect()


def _pipeline_row(runs: _Runs, config: Config, workers: PeerWorkers, shape: str) -> Row:
    length = min(config.chain, PIPELINE_MAX)
    timings = repeat(config.reps, lambda: runs.pipeline(length), workers.restart)
    note = ""
    if length < config.chain:
        note = (
            f"pipeline of {length:,}, not {config.chain:,}: a longer one exceeds the JSON nesting "
            "Python encodes with its default recursion limit (about 495 messages)"
        )
    label = f"pipeline of {length:,} no-ops, {shape}"
    return peer_row(PEER, label, "ms/hop", timings, per_hop_ms, note, counted=False)


def _workers(bench: BenchRedis, processes: int, threads: int) -> PeerWorkers:
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "bench.peer_dramatiq_app:setup_worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]

    def ready() -> bool:
        # Every worker process has fetched once (the bench's own broker has not talked yet).
        return int(bench.client.zcard(HEARTBEATS)) >= processes

    return PeerWorkers(bench, f"dramatiq-{processes}x{threads}", command, ready, {URL_ENV: bench.url})


class _Runs:
    """Measured runs on one broker: a clean Redis, enqueue, then wait until the queue is empty."""

    def __init__(self, bench: BenchRedis, broker: RedisBroker, bound_s: float) -> None:
        self.bench = bench
        self.broker = broker
        self.bound_s = bound_s

    def warm_up(self) -> None:
        """One unmeasured group: the workers' first messages, the broker's scripts loaded."""
        self.group(WARMUP_MESSAGES)

    def group(self, width: int) -> Timing:
        """``dramatiq.group`` of ``width`` no-op messages, until every one is acked."""
        messages = [_message() for _ in range(width)]
        self.bench.reset()
        t0, cpu0 = time.perf_counter(), time.thread_time()
        dramatiq.group(messages, broker=self.broker).run()  # type: ignore[no-untyped-call]
        return self._wait(t0, cpu0, width, lambda: width - int(self.broker.do_qsize(QUEUE)))

    def pipeline(self, length: int) -> Timing:
        """``dramatiq.pipeline`` of ``length`` no-op messages, until the last is acked."""
        messages = [_message() for _ in range(length)]
        self.bench.reset()
        t0, cpu0 = time.perf_counter(), time.thread_time()
        dramatiq.pipeline(messages, broker=self.broker).run()  # type: ignore[no-untyped-call]
        # Dramatiq does not count a pipeline's hops: an unfinished one is counted whole, so
        # its figure (the bound over the length) is a lower bound of the time per hop.
        return self._wait(t0, cpu0, length, lambda: length)

    def _wait(self, t0: float, cpu0: float, total: int, done: Callable[[], int]) -> Timing:
        remaining_ms = max(int((self.bound_s - (time.perf_counter() - t0)) * 1000), 1)
        try:
            self.broker.join(QUEUE, interval=POLL_MS, timeout=remaining_ms)
        except QueueJoinTimeout:
            return Timing(self.bound_s, False, done(), total, time.thread_time() - cpu0)
        return Timing(time.perf_counter() - t0, True, total, total, time.thread_time() - cpu0)


def _message() -> dramatiq.Message[None]:
    return dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(), kwargs={}, options={})


def _count(n: int, noun: str, plural: str) -> str:
    return f"{n} {noun}{plural if n != 1 else ''}"
