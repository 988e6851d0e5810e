"""Section 10, log capture: what capturing a task's output costs a no-op task.

Two rqdag worker pools of the same size run side by side on their own queues:
the suite's base pool, capture on (the default), and one started with
``--task-log-lines 0``.
The same wide DAG of no-op tasks runs on each in turn (alternating, ratios
per pair): capture on / capture off, in tasks/s. A second row times the
capture alone in this process (``LogShipper.capture`` around a call that
writes nothing, as the job function does around a task) against the time a
worker spends on each no-op task with capture off.
"""

from __future__ import annotations

import dataclasses
import time

from bench.pools import WorkerPool
from bench.session import Session, alternated, series_of
from bench.stats import Row, Series, ratio_row, ratios
from bench.throughput import rate
from bench.workloads import wide_workflow
from rqdag.shared.model.task_logs import LogLimits
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store.scripts import Scripts
from rqdag.worker import capture_hooks as capture
from rqdag.worker.capture import LogShipper
from rqdag.worker.ticker import Ticker

SECTION = "10. Log capture"
OFF_QUEUE = "nocapture"
TARGET_RATIO = 0.95
TARGET_SHARE = 0.05
CALLS = 20_000


def _on_queue(workflow: Workflow, queue: str) -> Workflow:
    return Workflow(workflow.name, [dataclasses.replace(t, queue=queue) for t in workflow.tasks])


def measure(session: Session, width: int, workers: int) -> list[Row]:
    """Both rows: the suite's base pool of ``workers`` rqdag workers (capture on, running already)
    against as many more with capture off, on a queue of their own."""
    with WorkerPool(session.bench, "rqdag", workers, queue=OFF_QUEUE, extra=("--task-log-lines", "0")):
        on_flow = wide_workflow(width, name="bench-capture-on")
        off_flow = _on_queue(wide_workflow(width, name="bench-capture-off"), OFF_QUEUE)
        session.rqdag(_on_queue(wide_workflow(20, name="bench-warmup"), OFF_QUEUE), "warmup")
        on, off = alternated(
            session.config.reps,
            lambda: session.rqdag(on_flow, "capture-on"),
            lambda: session.rqdag(off_flow, "capture-off"),
        )
    off_rate = series_of(off, rate)
    throughput = ratio_row(
        SECTION,
        f"wide DAG 1 -> {width:,} -> 1 ({width + 2:,} no-op tasks), capture on, {workers} workers",
        "tasks/s",
        series_of(on, rate),
        off_rate,
        "the same with capture off (--task-log-lines 0)",
        at_least=TARGET_RATIO,
    )
    return [throughput, _alone(session, off_rate, workers)]


def _alone(session: Session, off_rate: Series, workers: int) -> Row:
    """The capture alone, in this process, against a worker's time per no-op task (capture off)."""
    conn = session.client.connection
    shipper = LogShipper(conn, Scripts.register(conn).append_logs, LogLimits(), Ticker())
    costs = []
    try:
        for _ in range(session.config.reps):
            costs.append(_capture_us(shipper))
    finally:
        capture.uninstall_hooks()
    alone = Series.of(costs)
    per_task = Series.of([workers / r * 1e6 for r in off_rate.known if r > 0] or [float("nan")])
    share = ratios(alone, per_task)
    return Row(
        section=SECTION,
        measure=f"the capture around a call that writes nothing (in-process, {CALLS:,} calls)",
        unit="us/task",
        rqdag=alone,
        reference=per_task,
        reference_name="a worker's time per no-op task, capture off",
        ratio=share,
        target=f"<= {TARGET_SHARE:.2f}",
        met=share.valid and share.median <= TARGET_SHARE,
    )


def _capture_us(shipper: LogShipper) -> float:
    """Microseconds a capture block adds to a call, over a bare loop of the same calls."""
    started = time.perf_counter()
    for i in range(CALLS):
        with shipper.capture("bench-capture", "t", i):
            pass
    captured = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(CALLS):
        pass
    bare = time.perf_counter() - started
    return (captured - bare) / CALLS * 1e6
