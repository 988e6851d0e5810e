"""Section 9, map: a mapped fan-out against the static wide DAG, and the cost of one expansion."""

from __future__ import annotations

import time

from bench.drive import Timing
from bench.session import Session, alternated, series_of
from bench.stats import Row, Series, ratio_row
from bench.workloads import mapped_workflow, wide_workflow
from rqdag import TaskResult
from rqdag.coordinator.state import TaskStateManager
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.runs import RunStore

SECTION = "12. Map"
TARGET_RATIO = 0.90
EXPAND_TARGET_S = 1.0
NOTES = [
    "the mapped run's children are made by the coordinator when the root succeeds, stored in "
    "fenced chunks before any is dispatched; each child also reads the root's list (its input)",
    "expansion: the in-process coordinator's state machine expands the root's list and the "
    "children are written to Redis (RunStore.write_expansion), timed together, no workers",
]


def measure(session: Session, width: int, workers: int, expand: int) -> list[Row]:
    """The fan-out row (mapped vs static, alternating in one run) and the expansion row."""
    static = wide_workflow(width)
    mapped = mapped_workflow(width)
    ours, theirs = alternated(
        session.config.reps,
        lambda: session.rqdag(mapped, "mapped", params={"width": width}),
        lambda: session.rqdag(static, "wide"),
    )

    def rate(timing: Timing) -> float:
        return (width + 2) / timing.seconds if timing.finished and timing.seconds > 0 else 0.0

    fan = ratio_row(
        SECTION,
        f"mapped fan-out 1 -> {width:,} children -> 1, {workers} workers",
        "tasks/s",
        series_of(ours, rate),
        series_of(theirs, rate),
        f"static wide DAG 1 -> {width:,} -> 1",
        at_least=TARGET_RATIO,
    )
    return [fan, expansion_row(session, expand)]


def expansion_row(session: Session, count: int) -> Row:
    """Seconds to expand ``count`` children and store them, median of the repetitions."""
    times = Series.of([expand_once(session, count, rep) for rep in range(session.config.reps)], False)
    return Row(
        section=SECTION,
        measure=f"expanding {count:,} children (state machine + stored in Redis)",
        unit="s",
        rqdag=times,
        reference=None,
        reference_name="(none)",
        target=f"< {EXPAND_TARGET_S:g} s",
        met=times.median < EXPAND_TARGET_S,
    )


def expand_once(session: Session, count: int, rep: int) -> float:
    """One expansion of ``count`` items: the source's completion to its children stored."""
    session.bench.reset()
    workflow = mapped_workflow(count, name="bench-expand")
    run_id = session.next_id(f"expand{rep}")
    store = RunStore(session.client.connection)
    store.create_run(workflow, run_id=run_id)
    session.client.connection.set(RunKeys(run_id).lease, "bench")  # the expansion is fenced by it
    state = TaskStateManager(workflow.tasks, track_timeouts=False)
    [root] = state.take_ready(0.0, 1)
    data = list(range(count))
    t0 = time.perf_counter()
    state.complete("root", root.token, TaskResult.success(data), 0.0)
    for name, expansion in state.take_new_expansions():
        store.write_expansion(run_id, "bench", name, expansion)
    return time.perf_counter() - t0
