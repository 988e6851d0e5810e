"""Section 1, throughput: a wide DAG on rqdag against raw RQ draining as many independent jobs."""

from __future__ import annotations

from bench.drive import Timing
from bench.session import Session, paired, series_of
from bench.stats import Row, Series, ratio_row
from bench.workloads import raw_independent, wide_workflow

SECTION = "1. Throughput"
TARGET_RATIO = 0.90


def rate(timing: Timing) -> float:
    """Tasks (or jobs) finished per second."""
    return timing.done / timing.seconds if timing.seconds > 0 else 0.0


def measure(session: Session, width: int, workers: int) -> Row:
    """``1 -> width -> 1`` on rqdag vs ``width + 2`` independent raw RQ jobs, ``workers`` each side."""
    workflow = wide_workflow(width)
    total = width + 2
    ours, theirs = paired(session, workflow, "wide", lambda tag: raw_independent(total, tag))
    rqdag = series_of(ours, rate)
    cpu_us = Series.of([t.cpu_s / t.done * 1e6 for t in ours if t.done])
    return ratio_row(
        SECTION,
        f"wide DAG 1 -> {width:,} -> 1 ({total:,} no-op tasks), {workers} workers",
        "tasks/s",
        rqdag,
        series_of(theirs, rate),
        f"raw RQ, {total:,} independent jobs",
        at_least=TARGET_RATIO,
        note=f"in-process coordinator CPU: {cpu_us.format()} us/task",
    )
