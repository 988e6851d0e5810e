"""An operator records what really happened to a task (an in-doubt at-most-once task, say)."""

from __future__ import annotations

import getpass
import socket
import time
from typing import Any

from rqdag.errors import RqdagError
from rqdag.shared.model.codec import loads
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.vocabulary import AuditKind, TaskStatus
from rqdag.shared.store import keys
from rqdag.shared.store.records import text
from rqdag.shared.store.runs import RunStore


def operator_name() -> str:
    """``user@host`` of whoever runs this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def resolve_task(
    store: RunStore,
    run_id: str,
    task: str,
    *,
    status: TaskStatus,
    data: Any = None,
    reason: str | None = None,
    who: str | None = None,
) -> TaskResult:
    """Replace ``task``'s result by ``status`` (success or failure) and go on.

    The previous value, who, when and why are appended to the run's audit
    stream. The run's coordinator sees a ``resolved`` event and releases (or
    skips) the task's dependents.
    """
    if status not in (TaskStatus.SUCCESS, TaskStatus.FAILURE):
        raise RqdagError(f"resolve records success or failure, not {status.value!r}")
    store.read_meta(run_id)
    workflow = store.read_definition(run_id)
    if task not in {t.name for t in workflow.tasks}:
        raise RqdagError(f"run '{run_id}' has no task '{task}'")
    rk = keys.RunKeys(run_id)
    previous_raw = store.client.hget(rk.results, task)
    if previous_raw is None:
        raise RqdagError(
            f"run '{run_id}': task '{task}' has no result to resolve yet (it is pending or running)"
        )
    who = who or operator_name()
    now = time.time()
    note = f"resolved by {who}" + (f": {reason}" if reason else "")
    previous = loads(previous_raw, what=f"run '{run_id}': results field '{task}'")
    attempt = previous.get("metrics", {}).get("attempt", 0) if isinstance(previous, dict) else 0
    result = TaskResult(
        status,
        message=note,
        data=data,
        metrics=TaskMetrics(finished_at=now, attempt=attempt if isinstance(attempt, int) else 0),
        definition_hash=next(t.definition_hash() for t in workflow.tasks if t.name == task),
    )
    audit = {
        "kind": AuditKind.RESOLVE,
        "task": task,
        "who": who,
        "at": now,
        "reason": reason,
        "status": status.value,
        "previous": previous,
    }
    store.record_resolution(run_id, task, result, audit)
    return result


def read_audit(store: RunStore, run_id: str, task: str | None = None) -> list[dict[str, Any]]:
    """The run's audit entries (resolutions, results set aside by resumes), oldest first."""
    out = []
    entries: Any = store.client.xrange(keys.RunKeys(run_id).audit)
    for _id, fields in entries:
        raw = fields.get(b"entry")
        if raw is None:
            continue
        entry = loads(raw, what=f"run '{run_id}': audit entry")
        if isinstance(entry, dict) and (task is None or entry.get("task") == task):
            entry.setdefault("kind", text(fields.get(b"kind", AuditKind.RESUME)))
            out.append(entry)
    return out
