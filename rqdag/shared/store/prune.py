"""``prune``: delete finished runs older than an age, a bounded batch at a time.

The runs index is read page by page (:func:`_index_pages`), the matching runs
are handed to an export first if asked, then deleted through
:meth:`RetentionMixin.prune_batch` (one bounded script per run), which also
forgets ids whose keys are gone. The rule is in :mod:`.retention`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from rqdag.shared.store import keys
from rqdag.shared.store.retention import EXPIRING_STATUSES, RetentionMixin, stored_number, stored_text

PRUNABLE_STATUSES = (*EXPIRING_STATUSES, "error")  # error: only when asked for by name
PRUNE_BATCH = 200  # runs read, exported and deleted per round trip


@dataclass(frozen=True)
class PruneCriteria:
    """Which finished runs ``prune`` deletes: older than an age, of some statuses, of a workflow."""

    older_than_s: float
    statuses: tuple[str, ...] = EXPIRING_STATUSES
    workflow: str | None = None


@dataclass(frozen=True)
class PruneCandidate:
    """A finished run that matches the criteria."""

    run_id: str
    workflow: str
    status: str
    created_at: float | None
    finished_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see docs/json.md)."""
        return dict(self.__dict__)


@dataclass
class PruneReport:
    """What a prune deleted (or, dry, would delete), and what changed under it."""

    pruned: list[PruneCandidate] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # matched, then resumed or finished again
    forgotten: int = 0  # ids whose keys were gone already, dropped from the indexes


BeforeDelete = Callable[[Sequence[PruneCandidate]], None]


def prune_runs(
    store: RetentionMixin,
    criteria: PruneCriteria,
    *,
    now: float | None = None,
    dry_run: bool = False,
    before_delete: BeforeDelete | None = None,
    batch: int = PRUNE_BATCH,
) -> PruneReport:
    """Delete finished runs that match ``criteria``, a batch at a time.

    ``before_delete`` gets each batch first (an export); if it raises, that batch
    is not deleted. With ``dry_run`` nothing is written at all. A run that is
    pending, running or blocked is never deleted, even if it changes meanwhile.
    """
    now = time.time() if now is None else now
    cutoff = now - criteria.older_than_s
    report = PruneReport()
    if not dry_run:
        while (swept := store.sweep_expired(now)) > 0:
            report.forgotten += swept
    for candidates, stale in _matching_pages(store.client, criteria, cutoff, batch):
        if dry_run:
            report.pruned.extend(candidates)
            continue
        store.forget_runs(stale)
        report.forgotten += len(stale)
        if not candidates:
            continue
        if before_delete is not None:
            before_delete(candidates)
        deleted = set(store.prune_batch([c.run_id for c in candidates], cutoff, criteria.statuses))
        report.pruned.extend(c for c in candidates if c.run_id in deleted)
        report.changed.extend(c.run_id for c in candidates if c.run_id not in deleted)
    return report


def _matching_pages(
    client: redis.Redis, criteria: PruneCriteria, cutoff: float, batch: int
) -> Iterator[tuple[list[PruneCandidate], list[str]]]:
    """Per page of the runs index: the runs that match, and ids whose meta is gone."""
    for page in _index_pages(client, cutoff, batch):
        with client.pipeline(transaction=False) as pipe:
            for run_id in page:
                pipe.hmget(keys.RunKeys(run_id).meta, ["workflow", "status", "created_at", "finished_at"])
            rows = pipe.execute()
        matching: list[PruneCandidate] = []
        stale: list[str] = []
        for run_id, (workflow, status, created, finished) in zip(page, rows, strict=True):
            if status is None and workflow is None and created is None:
                stale.append(run_id)
                continue
            candidate = _candidate(run_id, workflow, status, created, finished)
            if candidate is not None and _matches(candidate, criteria, cutoff):
                matching.append(candidate)
        yield matching, stale


def _candidate(run_id: str, workflow: Any, status: Any, created: Any, finished: Any) -> PruneCandidate | None:
    finished_at = stored_number(finished)
    if finished_at is None:
        return None
    return PruneCandidate(
        run_id, stored_text(workflow), stored_text(status), stored_number(created), finished_at
    )


def _matches(candidate: PruneCandidate, criteria: PruneCriteria, cutoff: float) -> bool:
    return (
        candidate.status in criteria.statuses
        and candidate.finished_at <= cutoff
        and (criteria.workflow is None or candidate.workflow == criteria.workflow)
    )


def _index_pages(client: redis.Redis, max_score: float, batch: int) -> Iterator[list[str]]:
    """Run ids of the runs index created at or before ``max_score``, oldest first, ``batch`` at a time.

    The cursor is a score (and the ids seen at it), so deleting runs while
    reading skips none. A run finishes after it is created: none created after
    the cutoff can have finished before it.
    """
    low: float | str = "-inf"
    seen: set[str] = set()
    while True:
        count = batch + len(seen)
        rows: list[tuple[bytes, float]] = client.zrangebyscore(  # type: ignore[assignment]
            keys.RUNS, low, max_score, start=0, num=count, withscores=True
        )
        fresh = [(stored_text(m), float(s)) for m, s in rows if not (s == low and stored_text(m) in seen)]
        if not fresh:
            return
        yield [m for m, _ in fresh]
        top = fresh[-1][1]
        if top != low:
            low, seen = top, set()
        seen.update(m for m, s in fresh if s == top)
        if len(rows) < count:
            return
