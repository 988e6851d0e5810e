"""Section 5, coordinator overhead: Redis round trips and commands per task, counted.

Commands come from the server: ``CONFIG RESETSTAT`` before a run, ``INFO
commandstats`` after it (calls made inside Lua scripts included), minus the
bench's own polling. Round trips are counted on the client side (see
:mod:`bench.counting`): in each worker process, and on the in-process coordinator's
connection (rqdag) or the enqueuer's (raw RQ). A pipeline or MULTI/EXEC is one
round trip. Both sides run with counted workers, so the counting costs them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq.queue import EnqueueData

from bench.counting import Tally, counting_connection_class
from bench.drive import Timing, raw_queue, run_raw, run_rqdag
from bench.pools import RAW_QUEUE, WorkerPool
from bench.session import Session, alternate
from bench.stats import Row, Series, ratios
from bench.workloads import chain_workflow, raw_chain, raw_independent, wide_workflow
from rqdag.client import Client
from rqdag.shared.model.workflow import Workflow

SECTION = "5. Overhead"
TARGET_ADDED_ROUND_TRIPS = 3.0
SETTLE_S = 0.1


@dataclass(frozen=True)
class Counts:
    """Per task: round trips and top-level commands of each side, and the server's command count."""

    worker_round_trips: float
    worker_commands: float
    driver_round_trips: float
    driver_commands: float
    server_commands: float

    @property
    def round_trips(self) -> float:
        """Both sides."""
        return self.worker_round_trips + self.driver_round_trips


def counting_client(url: str, tally: Tally) -> redis.Redis:
    """A client like :func:`rqdag.shared.connect.connect`'s whose traffic goes to ``tally``."""
    return redis.Redis.from_url(
        url,
        connection_class=counting_connection_class(tally),
        socket_timeout=30,
        socket_connect_timeout=10,
        health_check_interval=30,
    )


def settle(pool: WorkerPool) -> None:
    """Wait until the workers have gone quiet (the last job's bookkeeping is counted too)."""
    before = pool.tally()
    while True:
        time.sleep(SETTLE_S)
        now = pool.tally()
        if now == before:
            return
        before = now


class Counter:
    """Counts one run: server command stats, the pool's tally and the driving side's tally."""

    def __init__(
        self, session: Session, pool: WorkerPool, driver: Tally, poller: Tally | None = None
    ) -> None:
        self.session = session
        self.pool = pool
        self.driver = driver
        self.poller = poller

    def count(self, run: Callable[[], Timing]) -> Counts:
        """Run ``run`` between two readings of every counter."""
        bench = self.session.bench
        bench.reset()
        bench.reset_stats()
        workers0, driver0, poll0 = self.pool.tally(), self.driver.snapshot(), self._polls()
        timing = run()
        settle(self.pool)
        server = sum(bench.command_calls().values()) - (self._polls() - poll0)
        workers1, driver1 = self.pool.tally(), self.driver.snapshot()
        tasks = timing.done
        return Counts(
            worker_round_trips=(workers1[0] - workers0[0]) / tasks,
            worker_commands=(workers1[1] - workers0[1]) / tasks,
            driver_round_trips=(driver1[0] - driver0[0]) / tasks,
            driver_commands=(driver1[1] - driver0[1]) / tasks,
            server_commands=server / tasks,
        )

    def _polls(self) -> int:
        return self.poller.snapshot()[1] if self.poller is not None else 0


def measure_shape(
    session: Session,
    pools: tuple[WorkerPool, WorkerPool],
    label: str,
    workflow: Workflow,
    make_raw: Callable[[str], list[EnqueueData]],
) -> list[Row]:
    """Count both sides on one workload, ``reps`` times each, alternating."""
    url = session.bench.url
    coordinator, enqueuer, poller = Tally(), Tally(), Tally()
    ours_client = Client(connection=counting_client(url, coordinator))
    queue = raw_queue(counting_client(url, enqueuer), RAW_QUEUE)
    poll_client = counting_client(url, poller)
    bound = session.config.run_bound_s
    ours_counter = Counter(session, pools[0], coordinator)
    raw_counter = Counter(session, pools[1], enqueuer, poller)
    ours: list[Counts] = []
    theirs: list[Counts] = []
    try:
        alternate(
            session.config.reps,
            lambda: ours.append(
                ours_counter.count(lambda: run_rqdag(ours_client, workflow, session.next_id("count"), bound))
            ),
            lambda: theirs.append(
                raw_counter.count(lambda: run_raw(queue, make_raw(session.next_id("c")), poll_client, bound))
            ),
        )
    finally:
        for client in (ours_client.connection, queue.connection, poll_client):
            client.close()
    return rows_for(label, ours, theirs)


def _series(counts: list[Counts], field: Callable[[Counts], float]) -> Series:
    return Series.of([field(c) for c in counts])


def rows_for(label: str, ours: list[Counts], theirs: list[Counts]) -> list[Row]:
    """The rows of one workload."""
    rows = []
    for what, field in (
        ("worker side", lambda c: c.worker_round_trips),
        ("coordinator side (raw RQ: the enqueuer)", lambda c: c.driver_round_trips),
    ):
        a, b = _series(ours, field), _series(theirs, field)
        rows.append(_row(f"{label}: round trips per task, {what}", "round trips", a, b, note=_added(a, b)))
    total, raw_total = _series(ours, lambda c: c.round_trips), _series(theirs, lambda c: c.round_trips)
    added = Series.of([x - y for x, y in zip(total.values, raw_total.values, strict=False)])
    rows.append(
        _row(
            f"{label}: round trips per task, both sides",
            "round trips",
            total,
            raw_total,
            target=f"added <= {TARGET_ADDED_ROUND_TRIPS:g}",
            met=added.median <= TARGET_ADDED_ROUND_TRIPS,
            note=_added(total, raw_total),
        )
    )
    server, raw_server = (
        _series(ours, lambda c: c.server_commands),
        _series(theirs, lambda c: c.server_commands),
    )
    top = (
        f"top-level commands per task: workers {_series(ours, lambda c: c.worker_commands).format()} "
        f"vs {_series(theirs, lambda c: c.worker_commands).format()}, coordinator "
        f"{_series(ours, lambda c: c.driver_commands).format()} vs enqueuer "
        f"{_series(theirs, lambda c: c.driver_commands).format()}"
    )
    rows.append(
        _row(
            f"{label}: Redis commands per task (server count, Lua calls included)",
            "commands",
            server,
            raw_server,
            note=top,
        )
    )
    return rows


def _added(ours: Series, theirs: Series) -> str:
    diffs = Series.of([x - y for x, y in zip(ours.values, theirs.values, strict=False)])
    return f"added by rqdag: {diffs.format()}"


def _row(
    measure: str,
    unit: str,
    ours: Series,
    theirs: Series,
    *,
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> Row:
    return Row(
        section=SECTION,
        measure=measure,
        unit=unit,
        rqdag=ours,
        reference=theirs,
        reference_name="raw RQ",
        ratio=ratios(ours, theirs),
        target=target,
        met=met,
        note=note,
    )


def measure(session: Session) -> list[Row]:
    """Every row of section 5: a wide DAG and a chain, counted on both sides."""
    config = session.config
    workers = config.workers
    with (
        WorkerPool(session.bench, "rqdag", workers, counted=True) as ours,
        WorkerPool(session.bench, "raw", workers, counted=True) as theirs,
    ):
        session.warm_up()
        width, length = config.overhead_width, config.overhead_chain
        rows = measure_shape(
            session,
            (ours, theirs),
            f"wide 1 -> {width:,} -> 1, {workers} workers",
            wide_workflow(width),
            lambda tag: raw_independent(width + 2, tag),
        )
        rows += measure_shape(
            session,
            (ours, theirs),
            f"chain of {length:,}, {workers} workers",
            chain_workflow(length),
            lambda tag: raw_chain(length, tag),
        )
    return rows
