"""Child runs of subflow tasks: started once (their id is derived), watched, cancelled, resumed.

The parent's coordinator starts the child run ``PARENT.TASK`` when the subflow
task is reached (a run that exists already was started before: a restarted
coordinator never starts a second one), learns of its end from a ``child`` event
that the child's driver appends to the parent's events stream (and from a
periodic check), and gives the subflow task the child's outcome. A parent
resumed in a new epoch resumes a child that failed, its successes kept.
"""

from __future__ import annotations

from typing import Any

from rqdag.errors import RqdagError, RunExistsError
from rqdag.shared.model.holds import child_run_id
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import RunStatus, TaskStatus
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store.resume import resume_run
from rqdag.shared.store.runs import RunStore


def start_child(store: RunStore, parent: str, task: str, epoch: int, workflow: Workflow, params: Any) -> str:
    """Start the child run of subflow ``task`` of run ``parent`` unless it exists; returns its id.

    A child that exists and failed (or was cancelled) in an earlier epoch of the
    parent is resumed in a new epoch of its own.
    """
    child = child_run_id(parent, task)
    if not isinstance(params, dict):
        raise RqdagError(f"run '{parent}': subflow '{task}' must return the child run's params as a dict")
    try:
        # the child is driven like its parent: a lost attempt is noticed as soon
        heartbeat_timeout_s = store.read_meta(parent).heartbeat_timeout_s
        store.create_run(
            workflow,
            run_id=child,
            params=params,
            heartbeat_timeout_s=heartbeat_timeout_s,
            parent=(parent, task, epoch),
            announce=True,
        )
    except RunExistsError:
        meta = store.read_meta(child)
        linked = store.read_parent(child)
        older = linked is not None and linked[2] < epoch
        if not (meta.finished and meta.status is not RunStatus.SUCCEEDED and older):
            return child
        resume_run(store, child)  # announces the child
        store.adopt_child(child, epoch)
    return child


def child_outcome(store: RunStore, parent: str, task: str) -> TaskResult | None:
    """The result the child run gives its subflow task, or None while it runs."""
    child = child_run_id(parent, task)
    meta = store.read_meta(child)
    if not meta.finished:
        return None
    results = store.read_results(child)
    tasks = store.read_definition(child).tasks
    if meta.status is RunStatus.SUCCEEDED:
        needed = {d for t in tasks for d in t.depends_on}
        final = {t.name: results[t.name].data for t in tasks if t.name not in needed and t.name in results}
        return TaskResult.success(final, message=f"child run {child} succeeded")
    failed = sorted(n for n, r in results.items() if r.status is TaskStatus.FAILURE)
    named = f": failed tasks {', '.join(failed)}" if failed else ""
    return TaskResult.failure(f"child run {child} {meta.status}{named}")


def cancel_child(store: RunStore, parent: str, task: str, reason: str) -> None:
    """Ask the child run of subflow ``task`` to stop (if it exists and runs)."""
    child = child_run_id(parent, task)
    if store.exists(child):
        store.request_cancel(child, f"parent run {parent} cancelled: {reason}")
