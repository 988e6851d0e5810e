"""Section 11, slots: concurrent workers (``--concurrency``) on no-ops and on sleeping tasks.

- A ``1 -> width -> 1`` no-op fan-out on 2 processes x 8 slots against raw RQ's
  2 SimpleWorkers draining as many jobs (target: 3x), and in a row of its own
  against a Dramatiq group of as many messages on 2 processes x 8 threads, the
  runs alternating with rqdag's (target: 0.8x; the row says so when Dramatiq,
  of the bench extra, is not installed).
- 1,000 tasks that each ``await asyncio.sleep(0.1)``, and 1,000 that each
  ``time.sleep(0.1)`` in threads, on 2 processes x 50 slots: done within 3 s.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from bench.drive import Timing
from bench.pools import WorkerPool
from bench.session import WARMUP_TASKS, Session, alternate, paired, series_of
from bench.stats import Row, Series, ratios
from bench.tasks import async_nap, thread_nap
from bench.throughput import rate
from bench.workloads import raw_independent, task_name, wide_workflow
from rqdag import Task, Workflow

SECTION = "11. Slots"
RAW_TARGET = 3.0
DRAMATIQ_TARGET = 0.8
SLEEP_TARGET_S = 3.0
NAP_S = 0.1


def measure(session: Session, progress: Callable[[str], None]) -> list[Row]:
    """The rows of the section; each pool is started and stopped here."""
    config = session.config
    procs = config.slots_processes
    rows: list[Row] = []
    progress(f"11. slots: no-op fan-out, {procs} x {config.slots_noop} slots vs raw RQ {procs} workers")
    with (
        WorkerPool(session.bench, "rqdag", procs, concurrency=config.slots_noop),
        WorkerPool(session.bench, "raw", procs),
    ):
        session.warm_up()
        rows.append(_fanout_row(session, procs, config.slots_noop))
        progress(
            f"11. slots: no-op fan-out, {procs} x {config.slots_noop} slots vs Dramatiq, as many threads"
        )
        rows.append(_dramatiq_row(session, procs, config.slots_noop))
    progress(f"11. slots: sleeping tasks, {procs} x {config.slots_sleep} slots")
    with WorkerPool(session.bench, "rqdag", procs, concurrency=config.slots_sleep):
        session.rqdag(wide_workflow(WARMUP_TASKS, name="bench-warmup"), "warmup")  # no raw pool here
        for label, func in (("await asyncio.sleep", async_nap), ("time.sleep", thread_nap)):
            rows.append(_sleep_row(session, label, func, procs, config.slots_sleep))
    return rows


def _fanout_row(session: Session, procs: int, slots: int) -> Row:
    width = session.config.width
    total = width + 2
    ours, theirs = paired(
        session, wide_workflow(width), "slots-wide", lambda tag: raw_independent(total, tag)
    )
    rqdag, raw = series_of(ours, rate), series_of(theirs, rate)
    ratio = ratios(rqdag, raw)
    return Row(
        section=SECTION,
        measure=f"wide DAG 1 -> {width:,} -> 1, {procs} processes x {slots} slots",
        unit="tasks/s",
        rqdag=rqdag,
        reference=raw,
        reference_name=f"raw RQ, {procs} SimpleWorkers, {total:,} independent jobs",
        ratio=ratio,
        target=f">= {RAW_TARGET:g}",
        met=ratio.median >= RAW_TARGET and not ratio.bound_hit,
        note="",
    )


def _dramatiq_row(session: Session, procs: int, slots: int) -> Row:
    width = session.config.width
    total = width + 2
    measure = f"wide DAG 1 -> {width:,} -> 1, {procs} processes x {slots} slots, vs Dramatiq"
    reference = f"Dramatiq, {procs} processes x {slots} threads, group of {total:,} no-ops"
    if importlib.util.find_spec("dramatiq") is None:
        return Row(
            section=SECTION,
            measure=measure,
            unit="tasks/s",
            rqdag=None,
            reference=None,
            reference_name=f"skipped: dramatiq not installed (pip install -e '.[bench]'); {reference}",
        )
    from bench import peer_dramatiq  # the bench extra: imported only once known to be there

    ours: list[Timing] = []
    theirs: list[Timing] = []
    with peer_dramatiq.group_runs(session.bench, session.config, procs, slots) as group:
        alternate(
            session.config.reps,
            lambda: ours.append(session.rqdag(wide_workflow(width), "slots-wide")),
            lambda: theirs.append(group(total)),
        )
    rqdag, dramatiq = series_of(ours, rate), series_of(theirs, rate)
    ratio = ratios(rqdag, dramatiq)
    return Row(
        section=SECTION,
        measure=measure,
        unit="tasks/s",
        rqdag=rqdag,
        reference=dramatiq,
        reference_name=reference,
        ratio=ratio,
        target=f">= {DRAMATIQ_TARGET:g}",
        met=ratio.median >= DRAMATIQ_TARGET and not ratio.bound_hit,
        note="runs alternating with rqdag's, the rqdag and raw RQ pools idle meanwhile",
    )


def _sleep_row(session: Session, label: str, func: Callable[..., object], procs: int, slots: int) -> Row:
    count = session.config.slots_sleep_tasks
    tasks = [Task(task_name(i), func) for i in range(count)]
    workflow = Workflow(f"bench-nap-{func.__name__}", tasks)
    timings: list[Timing] = []
    for _ in range(session.config.reps):
        timings.append(session.rqdag(workflow, "nap"))
    seconds = series_of(timings, lambda t: t.seconds)
    floor = count * NAP_S / (procs * slots)
    where = "" if label.startswith("await") else " in threads"
    return Row(
        section=SECTION,
        measure=f"{count:,} tasks each {label}({NAP_S:g}){where}, {procs} processes x {slots} slots",
        unit="s",
        rqdag=seconds,
        reference=Series.of([floor]),
        reference_name="the sleeps alone, all slots busy",
        ratio=None,
        target=f"<= {SLEEP_TARGET_S:g} s",
        met=seconds.median <= SLEEP_TARGET_S and not seconds.bound_hit,
        note="",
    )
