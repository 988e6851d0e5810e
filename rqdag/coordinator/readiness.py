"""When a task may run, over the state machine's columns: unresolved dependencies, dependents, skips.

Functions of task indexes (see :class:`~rqdag.shared.task_table.TaskTable`), so
that priming a run of 100,000 tasks walks lists, not objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rqdag.coordinator.phases import Phase
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import TaskStatus

VERBS = {TaskStatus.FAILURE: "failed", TaskStatus.SKIPPED: "was skipped"}


def count_unresolved(
    phase: list[Phase], deps: list[list[int]], remaining: list[int], in_doubt: Iterable[int]
) -> list[int]:
    """Make every task without a result WAITING, with ``remaining`` its dependencies that have
    no usable result (a result counts unless it is in doubt); the tasks with none, in order."""
    counted = [p is Phase.DONE for p in phase]
    for i in in_doubt:
        counted[i] = False
    count = counted.__getitem__
    resolved: list[int] = []
    for i, p in enumerate(phase):
        if p is Phase.DONE:
            continue
        phase[i] = Phase.WAITING
        left = len(deps[i])
        if left:
            left -= sum(map(count, deps[i]))
        remaining[i] = left
        if left == 0:
            resolved.append(i)
    return resolved


def unfinished_dependents(phase: list[Phase], deps: list[list[int]]) -> dict[int, list[int]]:
    """Task index to the indexes of its dependents that have no result yet (a task that is
    done never needs its dependencies' news again)."""
    dependents: dict[int, list[int]] = {}
    for child, p in enumerate(phase):
        if p is Phase.DONE:
            continue
        for dep in deps[child]:
            children = dependents.get(dep)
            if children is None:
                dependents[dep] = [child]
            else:
                children.append(child)
    return dependents


def skip_result(table: TaskTable, results: Mapping[str, TaskResult], i: int) -> TaskResult | None:
    """The ``skipped`` result of task ``i`` when a dependency of it did not succeed
    (a failure of a ``continue_on_error`` task does not count); None when it may run.

    Every dependency of ``i`` must have a result.
    """
    names = table.names
    for d in table.deps[i]:
        result = results[names[d]]
        status = result.status
        if status is TaskStatus.SUCCESS:
            continue
        if status is TaskStatus.FAILURE and table.task(d).continue_on_error:
            continue
        verb = VERBS.get(status, f"was {status.value}")
        return TaskResult.skipped(f"dependency '{names[d]}' {verb}")
    return None
