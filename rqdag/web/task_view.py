"""One task of a run: the ``rqdag inspect --json`` document, its attempts and its logs.

The logs are what workers captured of the task's attempts (``rqdag logs RUN
TASK``): the newest :data:`LOG_LINES_SHOWN` lines, in the same form as ``rqdag
logs --json``.
"""

from __future__ import annotations

import json
from typing import Any

from rqdag.cli.task_commands import inspect_task
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.task_logs import read_task_logs
from rqdag.web.timeline import build_timeline, read_events

DATA_SHOWN_BYTES = 64 * 1024
LOG_LINES_SHOWN = 2_000


def task_logs(store: RunStore, run_id: str, task: str) -> list[dict[str, Any]] | None:
    """The task's captured lines (its newest :data:`LOG_LINES_SHOWN`), oldest first; empty when none."""
    found = read_task_logs(store, run_id, task, limit=LOG_LINES_SHOWN)
    return [line.to_dict(run_id) for line in found.lines]


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
