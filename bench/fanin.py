"""Section 3, fan-in: 1 -> W -> 1 on rqdag against RQ ``depends_on`` with W dependencies on one job.

RQ checks every dependency of the join each time one of them finishes, so its
fan-in grows with W squared. A reference run that passes the bound is stopped and
reported as not finished (with how far it got); it is not repeated, since one
such run is the result.
"""

from __future__ import annotations

from bench.drive import Timing
from bench.pools import WorkerPool
from bench.session import Session, series_of
from bench.stats import Row, Series, judge, ratios
from bench.workloads import raw_fanin, wide_workflow

SECTION = "3. Fan-in"
TARGET_RATE_RATIO = 0.90


def seconds(timing: Timing) -> float:
    """Wall seconds of the run."""
    return timing.seconds


def measure(session: Session, width: int, workers: int, raw_pool: WorkerPool) -> Row:
    """Seconds to finish ``1 -> width -> 1`` on each side."""
    bound = session.config.fanin_bound_s
    workflow = wide_workflow(width, name="bench-fanin")
    ours: list[Timing] = []
    theirs: list[Timing] = []
    for rep in range(session.config.reps):
        if rep % 2 == 0:
            ours.append(session.rqdag(workflow, "fanin", bound))
        if not theirs or theirs[-1].finished:
            theirs.append(session.raw_jobs(lambda tag: raw_fanin(width, tag), bound))
            if not theirs[-1].finished:
                raw_pool.restart()  # its workers are still busy checking dependencies: stop them
        if rep % 2 == 1:
            ours.append(session.rqdag(workflow, "fanin", bound))
    rqdag = series_of(ours, seconds)
    raw = series_of(theirs, seconds)
    unfinished = [t for t in theirs if not t.finished]
    note = ""
    if unfinished:
        stuck = unfinished[0]
        note = (
            f"RQ did not finish within {bound:g} s: {stuck.done:,} of {stuck.total:,} jobs done; "
            "its figure is the bound, so the ratio is an upper bound"
        )
    return Row(
        section=SECTION,
        measure=f"fan-in 1 -> {width:,} -> 1, {workers} workers (bound {bound:g} s)",
        unit="s",
        rqdag=rqdag,
        reference=raw,
        reference_name=f"RQ depends_on: {width:,} dependencies on one job",
        ratio=ratios(rqdag, raw),
        target="report (RQ may not finish)",
        met=None,
        note=note,
    )


def rate_row(fanin: Row, wide: Row, width: int) -> Row:
    """The fan-in's rate against the wide DAG's of section 1 (same run, same workers).

    Repetitions are paired by position, as everywhere in the suite; the target
    is the issue's "within 10 % of the throughput case".
    """
    assert fanin.rqdag is not None and wide.rqdag is not None
    total = width + 2
    rates = Series.of([total / s if s > 0 else 0.0 for s in fanin.rqdag.values], fanin.rqdag.bound_hit)
    ratio = ratios(rates, wide.rqdag)
    return Row(
        section=SECTION,
        measure=f"fan-in 1 -> {width:,} -> 1: rate against the wide DAG of section 1",
        unit="tasks/s",
        rqdag=rates,
        reference=wide.rqdag,
        reference_name=f"rqdag, {wide.measure}",
        ratio=ratio,
        target=f">= {TARGET_RATE_RATIO:.2f}",
        met=judge(ratio, ratio.median >= TARGET_RATE_RATIO and not ratio.bound_hit),
    )
