"""Signals for wait tasks: ``rqdag signal RUN TASK``, ``client.signal``, the dashboard.

A signal is kept in the run's signals hash (so one sent before its wait is
reached is used when it is), recorded in the audit stream, and announced to the
run's coordinator by a ``signal`` event; the coordinator completes the wait
through its fenced path for results it decides. A signal counts in the epoch it
was sent in: a wait resumed in a later epoch waits for a new one.
"""

from __future__ import annotations

import time
from typing import Any

from rqdag.errors import DecodeError, RqdagError
from rqdag.shared.model.codec import loads
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import TaskKind, TaskStatus
from rqdag.shared.store import keys
from rqdag.shared.store.resolve import operator_name
from rqdag.shared.store.runs import RunStore


def signal_task(
    store: RunStore,
    run_id: str,
    task: str,
    *,
    status: TaskStatus = TaskStatus.SUCCESS,
    data: Any = None,
    reason: str | None = None,
    who: str | None = None,
) -> dict[str, Any]:
    """Send a signal to the wait ``task`` of run ``run_id``; returns the signal as stored.

    Raises RqdagError when the run or task does not exist, the task is not a
    wait, it has finished already, or it was signalled already in this epoch.
    """
    status = TaskStatus(status)
    if status not in (TaskStatus.SUCCESS, TaskStatus.FAILURE):
        raise RqdagError(f"a signal is success or failure, not {status.value!r}")
    meta = store.read_meta(run_id)
    workflow = store.read_definition(run_id)
    found = next((t for t in workflow.tasks if t.name == task), None)
    if found is None:
        raise RqdagError(f"run '{run_id}' has no task '{task}'")
    if found.kind is not TaskKind.WAIT:
        raise RqdagError(
            f"run '{run_id}': task '{task}' is not a wait (it is a {found.kind.value}): "
            "only a wait takes a signal"
        )
    previous_raw = store.client.hget(keys.RunKeys(run_id).results, task)
    if previous_raw is not None:
        previous = loads(previous_raw, what=f"run '{run_id}': results field '{task}'")
        said = previous.get("status", "?") if isinstance(previous, dict) else "?"
        raise RqdagError(
            f"run '{run_id}': wait '{task}' has finished already ({said}): a signal cannot change it"
        )
    earlier = store.read_signals(run_id, [task]).get(task)
    if earlier is not None and signal_epoch(earlier, run_id, task) >= meta.epoch:
        raise RqdagError(f"run '{run_id}': wait '{task}' was signalled already")
    signal = {
        "status": status.value,
        "data": data,
        "reason": reason,
        "who": who or operator_name(),
        "at": time.time(),
        "epoch": meta.epoch,
    }
    store.record_signal(run_id, task, signal)
    return signal


def signal_epoch(raw: bytes | str, run_id: str, task: str) -> int:
    """The epoch a stored signal was sent in."""
    decoded = _decode(raw, run_id, task)
    epoch = decoded.get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0


def signal_result(raw: bytes | str, run_id: str, task: str) -> TaskResult:
    """The result a stored signal gives its wait."""
    decoded = _decode(raw, run_id, task)
    who = decoded.get("who") or "?"
    if decoded.get("status") == TaskStatus.FAILURE:
        reason = decoded.get("reason")
        return TaskResult.failure(f"signalled failure by {who}" + (f": {reason}" if reason else ""))
    return TaskResult.success(decoded.get("data"), message=f"signalled by {who}")


def _decode(raw: bytes | str, run_id: str, task: str) -> dict[str, Any]:
    what = f"run '{run_id}': signals field '{task}'"
    decoded = loads(raw, what=what)
    if not isinstance(decoded, dict):
        raise DecodeError(f"{what} is not a JSON object")
    return decoded
