"""What ``status`` says of the waits and sleeps a run has reached: "waiting for signal",
"sleeping until ..." (their timers are in the run's timers hash)."""

from __future__ import annotations

import time
from typing import Any

from rqdag.shared.model.holds import child_run_id
from rqdag.shared.model.task import Task, TaskStatus
from rqdag.shared.model.vocabulary import TaskKind
from rqdag.shared.store.records import RunMeta, RunState
from rqdag.shared.store.runs import RunStore


def reached_holds(
    store: RunStore, meta: RunMeta, state: RunState, tasks: list[Task]
) -> dict[str, dict[str, Any]]:
    """Each wait or sleep without a result whose dependencies all succeeded: its kind and
    when its timer fires (unix time, None: a wait without a deadline)."""
    holds = [t for t in tasks if t.kind is not TaskKind.TASK and t.name not in state.results]
    if not holds or meta.finished:
        return {}
    timers = store.read_timers(meta.run_id)
    out: dict[str, dict[str, Any]] = {}
    for task in holds:
        deps = [state.results.get(d) for d in task.depends_on]
        if all(r is not None and r.status is TaskStatus.SUCCESS for r in deps):
            hold: dict[str, Any] = {"kind": task.kind.value, "until": timers.get(f"{meta.epoch}:{task.name}")}
            if task.kind is TaskKind.SUBFLOW:
                hold.update(until=None, child=child_run_id(meta.run_id, task.name))
            out[task.name] = hold
    return out


def family_lines(store: RunStore, run_id: str, tasks: list[Task]) -> list[str]:
    """``child run: R.task`` for each subflow of the run, ``parent run: P (subflow task)`` for a child."""
    lines = [f"child run: {child_run_id(run_id, t.name)}" for t in tasks if t.kind is TaskKind.SUBFLOW]
    parent = store.read_parent(run_id)
    if parent is not None:
        lines.append(f"parent run: {parent[0]} (subflow {parent[1]})")
    return lines


def hold_note(hold: dict[str, Any]) -> str:
    """``waiting for signal (until 12:00:00)`` or ``sleeping until 12:00:00``."""
    until = hold.get("until")
    when = "" if until is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until))
    if hold["kind"] == TaskKind.SUBFLOW:
        return f"child run: {hold['child']}"
    if hold["kind"] == TaskKind.SLEEP:
        return f"sleeping until {when}" if when else "sleeping"
    return "waiting for signal" + (f" (until {when})" if when else "")
