"""Explicit resume: a new epoch of a run where successes stay and the rest runs again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rqdag.errors import RqdagError
from rqdag.shared.model.task import TaskResult, TaskStatus
from rqdag.shared.model.vocabulary import RunStatus
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store.retention import RESUME_MARGIN_S
from rqdag.shared.store.runs import RunStore


@dataclass(frozen=True)
class ResumePlan:
    """What a resume keeps, runs again, adds and drops."""

    keep: list[str] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    add: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        """Plain JSON-ready form."""
        return {
            "keep": self.keep,
            "rerun": self.rerun,
            "changed": self.changed,
            "add": self.add,
            "drop": self.drop,
        }


def plan_resume(
    results: Mapping[str, TaskResult],
    old: Workflow,
    new: Workflow,
    *,
    keep_changed: bool = False,
) -> ResumePlan:
    """Successes whose definition is unchanged stay; everything else runs again.

    A success whose task changed since it ran (a different definition hash) runs
    again unless ``keep_changed``; it is listed in both ``rerun`` and ``changed``.
    """
    plan = ResumePlan()
    old_names = {t.name for t in old.tasks}
    for task in new.tasks:
        result = results.get(task.name)
        if task.name not in old_names:
            plan.add.append(task.name)
        elif result is None or result.status is not TaskStatus.SUCCESS:
            plan.rerun.append(task.name)
        elif keep_changed or result.definition_hash in (None, task.definition_hash()):
            plan.keep.append(task.name)
        else:
            plan.rerun.append(task.name)
            plan.changed.append(task.name)
    new_names = {t.name for t in new.tasks}
    plan.drop.extend(sorted(n for n in results if n not in new_names))
    return plan


def resume_run(
    store: RunStore,
    run_id: str,
    *,
    workflow: Workflow | None = None,
    keep_changed: bool = False,
    dry_run: bool = False,
) -> ResumePlan:
    """Compute the plan and, unless ``dry_run``, start the run's next epoch."""
    meta = store.read_meta(run_id)
    old = store.read_definition(run_id)
    new = workflow or old
    results = store.read_state(run_id).results
    plan = plan_resume(results, old, new, keep_changed=keep_changed)
    if dry_run:
        return plan
    if not meta.finished and meta.status is not RunStatus.BLOCKED:
        raise RqdagError(
            f"run '{run_id}' is {meta.status}: a coordinator is still driving it "
            "(cancel it first, or let it finish)"
        )
    expires_in = store.expires_in(run_id)
    if expires_in is not None and expires_in < RESUME_MARGIN_S:
        raise RqdagError(f"run '{run_id}' is expiring (its retention period is over): it cannot be resumed")
    removed = {n: results[n] for n in (*plan.rerun, *plan.drop) if n in results}
    store.open_epoch(meta, set_aside=removed, task_count=len(new.tasks), workflow=workflow)
    return plan
