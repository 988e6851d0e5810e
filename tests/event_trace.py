"""Run events reduced to what the in-process and the Redis mode must agree on.

Timings and the worker's name differ between the modes; everything else of an
event (its kind, run, task, attempt and result) must not.
"""

from __future__ import annotations

from typing import Any

from rqdag import TaskResult, TaskRunnerBuilder
from rqdag.coordinator.events import EVENT_KINDS, RunEvent

Step = tuple[Any, ...]


def outcome(result: TaskResult | None) -> tuple[Any, ...] | None:
    """The parts of a result that do not depend on where or when it ran."""
    if result is None:
        return None
    return (result.status.value, result.message, result.data, result.metrics.attempt)


def step_of(event: RunEvent) -> Step:
    """One event as a comparable tuple."""
    results = None
    if event.results is not None:
        results = tuple(sorted((name, outcome(r)) for name, r in event.results.items()))
    return (event.kind, event.run_id, event.task, event.attempt, outcome(event.result), results)


class Trace:
    """Listens to every event kind through the builder and keeps them in order."""

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def listen(self, builder: TaskRunnerBuilder) -> TaskRunnerBuilder:
        """Register one callback per event kind on ``builder``."""
        for kind in sorted(EVENT_KINDS):
            builder.on(kind, self.events.append)
        return builder

    def steps(self) -> list[Step]:
        """The events as comparable tuples."""
        return [step_of(e) for e in self.events]

    def kinds(self) -> list[tuple[str, str | None, int | None]]:
        """Kind, task and attempt of each event."""
        return [(e.kind, e.task, e.attempt) for e in self.events]


# What tests.integration.flows.recoverable emits at concurrency 1 (b fails for want of
# params['fixed'], so c is skipped; d fails once, then succeeds on its retry).
RECOVERABLE_KINDS = [
    ("workflow_start", None, None),
    ("task_start", "a", 1),
    ("task_end", "a", 1),
    ("task_start", "b", 1),
    ("task_end", "b", 1),
    ("task_skipped", "c", 0),
    ("task_start", "d", 1),
    ("task_retry", "d", 1),
    ("task_start", "d", 2),
    ("task_end", "d", 2),
    ("workflow_end", None, None),
]
