"""Section 2, chain latency: a chain of tasks on rqdag against RQ's own ``depends_on`` chain."""

from __future__ import annotations

from bench.drive import Timing
from bench.session import Session, paired, series_of
from bench.stats import Row, ratio_row
from bench.workloads import chain_workflow, raw_chain

SECTION = "2. Chain latency"
TARGET_RATIO = 1.0


def per_hop_ms(timing: Timing) -> float:
    """Milliseconds per task of the chain (from before submit/enqueue to the last task's end)."""
    return timing.seconds / max(timing.done, 1) * 1000


def measure(session: Session, length: int, workers: int) -> Row:
    """A chain of ``length`` no-op tasks on each side, ``workers`` workers each."""
    workflow = chain_workflow(length)
    ours, theirs = paired(session, workflow, "chain", lambda tag: raw_chain(length, tag))
    return ratio_row(
        SECTION,
        f"chain of {length:,} no-op tasks, {workers} workers",
        "ms/hop",
        series_of(ours, per_hop_ms),
        series_of(theirs, per_hop_ms),
        f"RQ depends_on chain of {length:,} jobs (enqueue_many)",
        at_most=TARGET_RATIO,
        digits=1,
    )
