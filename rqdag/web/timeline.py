"""A run's attempts over time, from its event stream, its results and its dispatch table.

The event stream tells when each attempt started (its entry id is Redis time)
and how it ended (finished, retry, lost, handed back). It is trimmed to about
``EVENTS_MAXLEN`` entries, so the results hash (the final attempt of every
task, with the worker's own times) and the dispatch table (attempts running
now) fill in what the stream no longer holds. Resume events mark the epochs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AttemptState, AuditKind, EventKind
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry, text
from rqdag.shared.store.runs import RunStore

MAX_EVENTS = 20_000
MAX_ATTEMPTS = 2_000

# event kind -> (attempt status, why it ended)
_ENDINGS: dict[str, tuple[str, str]] = {
    EventKind.LOST: (AttemptState.LOST, "lost"),
    EventKind.HANDBACK: (AttemptState.HANDED_BACK, "handed_back"),
}


@dataclass
class Attempt:
    """One attempt of one task: who ran it, when, and how it ended."""

    task: str
    attempt: int | None
    worker: str | None
    started_at: float | None
    finished_at: float | None = None
    status: str = "running"  # a result status, or running / lost / handed_back
    outcome: str = "running"  # finished / retry / lost / handed_back / running
    epoch: int = 1
    token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see docs/dashboard.md)."""
        duration = None
        if self.started_at is not None and self.finished_at is not None:
            duration = round(max(self.finished_at - self.started_at, 0.0), 6)
        return {
            "task": self.task,
            "attempt": self.attempt,
            "worker": self.worker,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": duration,
            "status": self.status,
            "outcome": self.outcome,
            "epoch": self.epoch,
        }


@dataclass(frozen=True)
class Event:
    """One entry of a run's event stream."""

    id: str
    at: float
    fields: dict[str, str]

    @property
    def kind(self) -> str:
        """The entry's ``kind`` field."""
        return self.fields.get("kind", "")


def read_events(store: RunStore, run_id: str, limit: int = MAX_EVENTS) -> list[Event]:
    """The newest ``limit`` entries of the run's event stream, oldest first."""
    raw: Any = store.client.xrevrange(RunKeys(run_id).events, count=limit)
    out = []
    for entry_id, fields in reversed(raw):
        ident = text(entry_id)
        out.append(
            Event(ident, int(ident.split("-", 1)[0]) / 1000, {text(k): text(v) for k, v in fields.items()})
        )
    return out


def attempt_of(token: str | None) -> int | None:
    """The attempt number a token carries (``"<attempt>-<random>"``), if it does."""
    head = (token or "").split("-", 1)[0]
    return int(head) if head.isdigit() else None


def first_epoch(events: Sequence[Event], epoch_now: int) -> int:
    """The epoch the oldest event kept in the stream belongs to."""
    return max(epoch_now - sum(1 for e in events if e.kind == EventKind.RESUME), 1)


def attempts_from_events(events: Sequence[Event], epoch_now: int) -> list[Attempt]:
    """Every attempt the stream shows, in the order they started."""
    epoch = first_epoch(events, epoch_now)
    by_token: dict[str, Attempt] = {}
    out: list[Attempt] = []
    for event in events:
        kind, task, token = event.kind, event.fields.get("task", ""), event.fields.get("token")
        if kind == EventKind.RESUME:
            epoch += 1
            continue
        if kind == EventKind.STARTED and token:
            found = Attempt(
                task, attempt_of(token), event.fields.get("worker"), event.at, epoch=epoch, token=token
            )
            by_token[token] = found
            out.append(found)
            continue
        current = by_token.get(token or "")
        if current is None or current.outcome != "running":
            continue
        if kind in (EventKind.FINISHED, EventKind.RETRY):
            current.finished_at = event.at
            current.status = event.fields.get("status", "failure")
            current.outcome = kind
        elif kind in _ENDINGS:
            current.finished_at = event.at
            current.status, current.outcome = _ENDINGS[kind]
    return out


def build_timeline(
    events: Sequence[Event],
    results: Mapping[str, TaskResult],
    dispatch: Mapping[str, DispatchEntry],
    epoch_now: int,
) -> list[Attempt]:
    """Attempts from the stream, completed by the final results and the attempts in flight."""
    attempts = attempts_from_events(events, epoch_now)
    latest: dict[tuple[str, int | None], Attempt] = {}
    tokens = set()
    for item in attempts:
        latest[(item.task, item.attempt)] = item
        tokens.add(item.token)
    for name, result in results.items():
        metrics = result.metrics
        if metrics.started_at is None:
            continue  # decided by the coordinator (skipped, cancelled): no attempt ran
        found = latest.get((name, metrics.attempt))
        if found is None:
            item = Attempt(name, metrics.attempt, metrics.worker, metrics.started_at, epoch=epoch_now)
            attempts.append(item)
        else:
            item = found
        item.started_at = metrics.started_at
        item.finished_at = metrics.finished_at
        item.worker = metrics.worker or item.worker
        item.status = result.status.value
        item.outcome = "finished"
    for name, entry in dispatch.items():
        if name in results or entry.started_at is None or entry.token in tokens:
            continue
        state = entry.state if entry.state != "retry_wait" else "failure"
        attempts.append(
            Attempt(
                name,
                entry.attempt,
                entry.worker,
                entry.started_at,
                status=state,
                outcome="running" if entry.state == "running" else entry.state,
                epoch=epoch_now,
                token=entry.token,
            )
        )
    attempts.sort(key=lambda a: (a.started_at or 0.0, a.task))
    return attempts[-MAX_ATTEMPTS:]


def epochs(
    events: Sequence[Event], epoch_now: int, created_at: float, audit: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per epoch: when it began and which results the resume that began it set aside."""
    began: dict[int, float] = {1: created_at}
    for event in events:
        if event.kind == EventKind.RESUME:
            try:
                began[int(event.fields.get("epoch", "0"))] = event.at
            except ValueError:
                continue
    set_aside: dict[int, list[str]] = {}
    for entry in audit:
        if entry.get("kind") == AuditKind.RESUME and isinstance(entry.get("epoch"), int):
            set_aside.setdefault(entry["epoch"] + 1, []).append(str(entry.get("task")))
    return [
        {"epoch": n, "started_at": began.get(n), "rerun": sorted(set_aside.get(n, []))}
        for n in range(1, epoch_now + 1)
    ]
