"""One task of a run: the ``rqdag inspect --json`` document, its attempts and its logs.

Logs are not captured yet: :func:`task_logs` is the one place that will read
them (the page shows "no logs captured" while it returns None).
"""

from __future__ import annotations

import json
from typing import Any

from rqdag.cli.task_commands import inspect_task
from rqdag.shared.store.runs import RunStore
from rqdag.web.timeline import build_timeline, read_events

DATA_SHOWN_BYTES = 64 * 1024


def task_logs(store: RunStore, run_id: str, task: str) -> list[dict[str, Any]] | None:
    """The task's captured log lines, by attempt; None while no capture exists for it."""
    return None


def pretty_data(data: Any, limit: int = DATA_SHOWN_BYTES) -> tuple[str, bool, int]:
    """The data as indented JSON, cut to ``limit`` characters: (text, truncated, full size)."""
    full = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    if len(full) <= limit:
        return full, False, len(full)
    return full[:limit], True, len(full)


def task_document(store: RunStore, run_id: str, task: str) -> dict[str, Any]:
    """The ``GET /api/runs/{run_id}/tasks/{task}`` document: inspect's, plus ``timeline`` and ``logs``."""
    doc = inspect_task(store, run_id, task)
    meta_epoch = int(doc["epoch"])
    state = store.read_state(run_id)
    attempts = build_timeline(read_events(store, run_id), state.results, state.dispatch, meta_epoch)
    doc["timeline"] = [a.to_dict() for a in attempts if a.task == task]
    doc["logs"] = task_logs(store, run_id, task)
    return doc
