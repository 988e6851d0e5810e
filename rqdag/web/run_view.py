"""One run as the dashboard shows it: the ``rqdag status --json`` document and more.

``run_document`` adds to the status document the tasks in topological order with
their statuses, the ETA of ``rqdag watch``, the timeline of attempts, the epochs
and the audit entries. Definitions are cached by run and epoch (a run's
definition changes only when a resume starts a new epoch).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from rqdag.cli.common import meta_to_dict
from rqdag.cli.live import estimate_eta
from rqdag.cli.output import TERMINAL, status_counts
from rqdag.shared.model.codec import loads, snapshot_to_document
from rqdag.shared.model.graph import topological_order
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskKind
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry, RunMeta, RunState, text
from rqdag.shared.store.runs import RunStore
from rqdag.web.mapped import mapped_nodes
from rqdag.web.timeline import build_timeline, epochs, read_events

AUDIT_SHOWN = 500
CACHED_DEFINITIONS = 32


@dataclass(frozen=True)
class Graph:
    """A run's tasks in topological order, with their dependencies."""

    order: list[str]
    tasks: dict[str, Task]

    @property
    def deps(self) -> dict[str, list[str]]:
        """Task name -> the names it depends on."""
        return {name: list(task.depends_on) for name, task in self.tasks.items()}


class DefinitionCache:
    """The last few runs' graphs, by (run id, epoch); safe to share between threads."""

    def __init__(self, size: int = CACHED_DEFINITIONS) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], Graph] = OrderedDict()
        self._lock = threading.Lock()

    def graph(self, store: RunStore, meta: RunMeta) -> Graph:
        """The graph of ``meta``'s run in its current epoch."""
        key = (meta.run_id, meta.epoch)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        tasks = store.read_definition(meta.run_id).tasks
        graph = Graph([t for t in topological_order(tasks)], {t.name: t for t in tasks})
        with self._lock:
            self._items[key] = graph
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return graph


def read_audit_tail(store: RunStore, run_id: str, limit: int = AUDIT_SHOWN) -> list[dict[str, Any]]:
    """The newest ``limit`` audit entries, oldest first (as ``read_audit`` gives them)."""
    raw: Any = store.client.xrevrange(RunKeys(run_id).audit, count=limit)
    out = []
    for entry_id, fields in reversed(raw):
        body = fields.get(b"entry")
        if body is None:
            continue
        entry = loads(body, what=f"run '{run_id}': audit entry {text(entry_id)}")
        if isinstance(entry, dict):
            entry.setdefault("kind", text(fields.get(b"kind", b"resume")))
            out.append(entry)
    return out


def task_row(
    name: str, task: Task | None, result: TaskResult | None, entry: DispatchEntry | None
) -> dict[str, Any]:
    """One task of the run with its status now."""
    row: dict[str, Any] = {
        "task": name,
        "depends_on": list(task.depends_on) if task else [],
        "queue": task.queue if task else None,
        "func": task.func_path if task else None,
        "status": "pending",
        "attempt": 0,
        "worker": None,
        "started_at": None,
        "finished_at": None,
        "duration_s": None,
        "message": None,
        "in_doubt": False,
    }
    if result is not None:
        m = result.metrics
        row.update(
            status=result.status.value,
            attempt=m.attempt,
            worker=m.worker,
            started_at=m.started_at,
            finished_at=m.finished_at,
            duration_s=m.duration_s,
            message=result.message,
            in_doubt=result.in_doubt,
        )
    elif entry is not None:
        row.update(
            status=entry.state, attempt=entry.attempt, worker=entry.worker, started_at=entry.started_at
        )
    return row


def run_document(
    store: RunStore, cache: DefinitionCache, run_id: str, *, with_results: bool = True
) -> dict[str, Any]:
    """The ``GET /api/runs/{run_id}`` document (see docs/dashboard.md).

    ``last_event_id`` is read first: whatever happens after it is in a later
    event, so a watcher that waits for events after it misses nothing.
    """
    newest: Any = store.client.xrevrange(RunKeys(run_id).events, count=1)
    meta = store.read_meta(run_id)
    graph = cache.graph(store, meta)
    state = store.read_state(run_id)
    total = max(meta.task_count, len(state.results))
    counts = status_counts(state.results, state.dispatch, total)
    done = sum(counts[s] for s in TERMINAL)
    running = sum(
        1 for name, e in state.dispatch.items() if e.state == "running" and name not in state.results
    )
    events = read_events(store, run_id)
    audit = read_audit_tail(store, run_id)
    names = list(graph.order) + sorted({*state.results, *state.dispatch} - graph.tasks.keys())
    doc: dict[str, Any] = {"run": meta_to_dict(meta)}
    if with_results:
        doc.update(snapshot_to_document(state.results))
    doc.update(
        in_flight=state.in_flight(),
        counts=counts,
        problems=state.problems,
        total=total,
        done=done,
        eta_s=None if meta.finished else _rounded(estimate_eta(state.results, total - done, running)),
        tasks=[task_row(n, graph.tasks.get(n), state.results.get(n), state.dispatch.get(n)) for n in names],
        timeline=[a.to_dict() for a in build_timeline(events, state.results, state.dispatch, meta.epoch)],
        epochs=epochs(events, meta.epoch, meta.created_at, audit),
        audit=audit,
        waits=pending_waits(graph, state, meta),
        mapped=mapped_nodes(graph.tasks, state.results, state.dispatch, store.expansion_counts(run_id)),
        last_event_id=text(newest[0][0]) if newest else "0-0",
        at=round(time.time(), 3),
    )
    return doc


def pending_waits(graph: Graph, state: RunState, meta: RunMeta) -> list[str]:
    """The waits of an unfinished run that have no result yet: those a signal may complete."""
    if meta.finished:
        return []
    return [n for n in graph.order if graph.tasks[n].kind is TaskKind.WAIT and n not in state.results]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
