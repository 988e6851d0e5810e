"""Section 2, chain latency: a chain of tasks on rqdag against RQ's own ``depends_on`` chain."""

from __future__ import annotations

from bench.drive import Timing
from bench.session import Session, paired, series_of
from bench.stats import Row, ratios
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
    rqdag = series_of(ours, per_hop_ms)
    raw = series_of(theirs, per_hop_ms)
    ratio = ratios(rqdag, raw)
    return Row(
        section=SECTION,
        measure=f"chain of {length:,} no-op tasks, {workers} workers",
        unit="ms/hop",
        rqdag=rqdag,
        reference=raw,
        reference_name=f"RQ depends_on chain of {length:,} jobs (enqueue_many)",
        ratio=ratio,
        target=f"<= {TARGET_RATIO:.1f}",
        met=ratio.median <= TARGET_RATIO and not ratio.bound_hit,
    )
