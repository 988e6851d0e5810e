"""Explicit resume: a new epoch of a run where successes stay and the rest runs again.

The plan (:mod:`rqdag.shared.model.resume_plan`) compares the run's stored
definition with the one it resumes with: the workflow given (``--target``), or
else the stored one with the code the workers run now (each worker publishes
the identity of its functions' code when it starts: :mod:`.code`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from rqdag.errors import RqdagError
from rqdag.shared.model.epochs import with_next_epoch
from rqdag.shared.model.params import check_params
from rqdag.shared.model.resume_plan import ResumePlan, plan_resume
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import RunStatus
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store.code import published_code
from rqdag.shared.store.records import RunMeta
from rqdag.shared.store.retention import RESUME_MARGIN_S
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.submissions import announce_run

__all__ = ["ResumePlan", "deployed_workflow", "plan_resume", "resume_run"]


def resume_run(
    store: RunStore,
    run_id: str,
    *,
    workflow: Workflow | None = None,
    keep_changed: bool = False,
    dry_run: bool = False,
    params: Mapping[str, Any] | None = None,
    rerun: Sequence[str] = (),
) -> ResumePlan:
    """Compute the plan and, unless ``dry_run`` or there is nothing to resume, start the
    run's next epoch.

    ``params`` change the values of those parameters from this epoch on (the
    others stay). ``rerun`` names successes to run again, with everything
    downstream of them. A run that succeeded and would run nothing again is
    left as it is (the plan says ``nothing_to_resume``).
    """
    meta = store.read_meta(run_id)
    old = store.read_definition(run_id)
    new = workflow if workflow is not None else deployed_workflow(store, old)
    _check_rerun(run_id, new, rerun)
    new_params = {**meta.params, **check_params(params)}
    results = store.read_state(run_id).results
    plan = plan_resume(results, old, new, keep_changed=keep_changed, rerun=rerun)
    plan = dataclasses.replace(
        plan,
        params=(meta.params, new_params),
        nothing_to_resume=meta.status is RunStatus.SUCCEEDED and plan.runs_nothing,
    )
    if dry_run or plan.nothing_to_resume:
        return plan
    _check_resumable(store, meta)
    store.open_epoch(
        meta,
        set_aside={n: results[n] for n in (*plan.rerun, *plan.drop) if n in results},
        task_count=len(new.tasks),
        workflow=workflow,
        definition=new if workflow is None and new is not old else None,
        restamp={n: dataclasses.replace(results[n], definition_hash=h) for n, h in plan.restamp.items()},
        params=new_params,
        epoch_params=with_next_epoch(meta.epoch_params, meta.epoch, meta.params, new_params),
    )
    announce_run(store.client, run_id)  # from any caller (client, CLI, dashboard), not at the next poll
    return plan


def deployed_workflow(store: RunStore, stored: Workflow) -> Workflow:
    """``stored`` with each task's code as the workers last published it (tasks with a
    ``version`` keep it: the author decides); ``stored`` itself when nothing differs."""
    tasks = stored.tasks
    published = published_code(store.client, {t.func for t in tasks if isinstance(t.func, str)})
    swapped: dict[str, Task] = {}
    for task in tasks:
        code = published.get(task.func) if isinstance(task.func, str) else None
        if task.version is None and code is not None and code != task.code_hash:
            swapped[task.name] = dataclasses.replace(task, code_hash=code)
    if not swapped:
        return stored
    return Workflow.of_checked(stored.name, {t.name: swapped.get(t.name, t) for t in tasks})


def _check_resumable(store: RunStore, meta: RunMeta) -> None:
    """Refuse a run that a coordinator still drives, or that is about to expire."""
    if not meta.finished and meta.status is not RunStatus.BLOCKED:
        raise RqdagError(
            f"run '{meta.run_id}' is {meta.status}: a coordinator is still driving it "
            "(cancel it first, or let it finish)"
        )
    expires_in = store.expires_in(meta.run_id)
    if expires_in is not None and expires_in < RESUME_MARGIN_S:
        raise RqdagError(
            f"run '{meta.run_id}' is expiring (its retention period is over): it cannot be resumed"
        )


def _check_rerun(run_id: str, workflow: Workflow, rerun: Sequence[str]) -> None:
    if isinstance(rerun, str):
        raise RqdagError(f"run '{run_id}': rerun must be a list of task names, got the text {rerun!r}")
    names = {t.name for t in workflow.tasks}
    unknown = [name for name in rerun if name not in names]
    if unknown:
        listed = ", ".join(f"'{name}'" for name in unknown)
        raise RqdagError(
            f"run '{run_id}' has no task {listed} to run again (its workflow is '{workflow.name}')"
        )
