"""The dashboard's actions, through the same code as the CLI, each kept in the run's audit stream.

- cancel: ``RunStore.request_cancel`` (as ``rqdag cancel``), then an audit entry
  of kind ``cancel`` (``RunStore.append_audit``);
- resume: ``resume_run`` (as ``rqdag resume``; with ``plan`` it changes nothing),
  then an audit entry of kind ``resumed`` (``resume_run`` itself keeps each result
  it sets aside);
- rerun: ``resume_run`` with ``rerun=[task]`` (as ``rqdag resume RUN --rerun TASK``):
  the task and everything downstream of it run again, in the next epoch; the audit
  entry is ``resume``'s (kind ``resumed``, its ``rerun`` names what runs again);
- resolve: ``resolve_task`` (as ``rqdag resolve``), which writes its own audit entry;
- signal: ``signal_task`` (as ``rqdag signal``), which writes its own audit entry.

``who`` is ``dashboard@<client address>``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rqdag.errors import RqdagError
from rqdag.shared.model.task import TaskStatus
from rqdag.shared.model.vocabulary import AuditKind
from rqdag.shared.store.resolve import resolve_task
from rqdag.shared.store.resume import resume_run
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.signals import signal_task

RESOLVE_STATUSES = (TaskStatus.SUCCESS.value, TaskStatus.FAILURE.value)


class Conflict(RqdagError):
    """The action does not apply to the run as it stands (say, cancelling a finished run)."""


def cancel(store: RunStore, run_id: str, *, who: str, via: str, reason: str | None) -> dict[str, Any]:
    """Ask the run's coordinator to cancel it; a finished run is a Conflict."""
    meta = store.read_meta(run_id)
    if meta.finished:
        raise Conflict(f"run '{run_id}' has already ended ({meta.status}): nothing to cancel")
    why = reason or "cancelled from the dashboard"
    store.request_cancel(run_id, why)
    store.append_audit(
        run_id, {"kind": AuditKind.CANCEL, "who": who, "via": via, "at": time.time(), "reason": why}
    )
    return {"run_id": run_id, "cancel": why, "who": who}


def resume(
    store: RunStore,
    run_id: str,
    *,
    who: str,
    via: str,
    plan: bool,
    keep_changed: bool,
    rerun: Sequence[str] = (),
) -> dict[str, Any]:
    """Start the run's next epoch (or, with ``plan``, only say what it would do);
    ``rerun``: tasks to run again (with what depends on them) though they succeeded."""
    result = resume_run(store, run_id, keep_changed=keep_changed, dry_run=plan, rerun=rerun)
    if not plan:
        epoch = store.read_meta(run_id).epoch
        store.append_audit(
            run_id,
            {
                "kind": AuditKind.RESUMED,
                "who": who,
                "via": via,
                "at": time.time(),
                "epoch": epoch,
                "keep_changed": keep_changed,
                "rerun": result.rerun,
            },
        )
    return {"run_id": run_id, "resumed": not plan, **result.to_dict()}


def resolve(
    store: RunStore, run_id: str, task: str, *, who: str, status: str, data: Any, reason: str | None
) -> dict[str, Any]:
    """Record what really happened to ``task``; the audit entry is ``resolve_task``'s own."""
    result = resolve_task(store, run_id, task, status=_outcome(status), data=data, reason=reason, who=who)
    return {"run_id": run_id, "task": task, "who": who, "result": result.to_dict()}


def signal(
    store: RunStore, run_id: str, task: str, *, who: str, status: str, data: Any, reason: str | None
) -> dict[str, Any]:
    """Send a signal to the wait ``task``; the audit entry is ``signal_task``'s own."""
    sent = signal_task(store, run_id, task, status=_outcome(status), data=data, reason=reason, who=who)
    return {"run_id": run_id, "task": task, "signal": sent}


def _outcome(status: str) -> TaskStatus:
    """The status a resolve or a signal gives a task: success or failure."""
    if status not in RESOLVE_STATUSES:
        raise RqdagError(f"'status' must be one of {', '.join(RESOLVE_STATUSES)}, not {status!r}")
    return TaskStatus(status)
