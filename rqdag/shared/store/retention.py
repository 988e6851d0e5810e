"""Run retention: a finished run's keys expire after a period, and ``prune`` deletes old runs.

The rule (docs/operations.md, "Retention"): when a run ends ``succeeded``, ``failed``
or ``cancelled``, its coordinator sets every key of the run but the lease (which
has its own short TTL) to expire at ``finished_at + retention`` (the workflow's
``retention``, else the coordinator's ``--retention``; ``0`` keeps it forever),
and records that time in the ``rqdag:runs:expiring`` index. A resume removes
the expiry again. The run indexes never keep an expired run for long: a
coordinator sweeps ids whose time has passed (and whose keys are gone) out of
every index once a minute, in bounded batches, and ``rqdag runs`` and ``prune``
drop any id whose meta hash has gone. ``error`` runs are left for an operator.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.scripts.outcomes import PruneOutcome
from rqdag.shared.store.scripts.run import PruneRun

log = logging.getLogger("rqdag.retention")

DEFAULT_RETENTION_S = 7 * 86400.0
EXPIRING_STATUSES = ("succeeded", "failed", "cancelled")
PRUNABLE_STATUSES = (*EXPIRING_STATUSES, "error")  # error: only when asked for by name
PRUNE_BATCH = 200  # runs read, exported and deleted per round trip
SWEEP_BATCH = 500
SWEEP_INTERVAL_S = 60.0
RESUME_MARGIN_S = 1.0  # a run that expires sooner than this is not resumed: it may vanish midway


def retention_meta(workflow: Workflow) -> dict[str | bytes, str | bytes | int | float]:
    """The meta field a new run stores: its workflow's retention, or '' for the coordinator's."""
    return {"retention_s": "" if workflow.retention_s is None else workflow.retention_s}


def retention_of(stored: Any, default_s: float) -> float:
    """Seconds a finished run is kept: its stored ``retention_s``, else ``default_s``."""
    value = _number(stored)
    return default_s if value is None or value < 0 else value


class RetentionMixin:
    """RunStore's writes for retention: expiring, keeping, deleting runs and cleaning indexes."""

    client: redis.Redis

    def expire_finished_run(self, run_id: str, default_s: float) -> float | None:
        """Set the keys of a finished run to expire; returns when (unix time), or None if kept.

        Idempotent: the time derives from the run's ``finished_at``, not from now.
        """
        rk = keys.RunKeys(run_id)
        status, finished_at, stored = self.client.hmget(rk.meta, ["status", "finished_at", "retention_s"])
        if _text(status) not in EXPIRING_STATUSES:
            return None
        seconds = retention_of(stored, default_s)
        if seconds <= 0:
            return None
        at = (_number(finished_at) or time.time()) + seconds
        with self.client.pipeline(transaction=True) as pipe:
            for key in rk.retained():
                pipe.pexpireat(key, int(at * 1000))
            pipe.zadd(keys.EXPIRING_RUNS, {run_id: at})
            pipe.execute()
        return at

    def expires_in(self, run_id: str) -> float | None:
        """Seconds until the run's keys expire, or None when they do not."""
        remaining = int(self.client.pttl(keys.RunKeys(run_id).meta))
        return None if remaining < 0 else remaining / 1000

    def persist_run(self, pipe: redis.client.Pipeline, run_id: str) -> None:
        """Queue on ``pipe`` what keeps the run forever again (a resume)."""
        for key in keys.RunKeys(run_id).retained():
            pipe.persist(key)
        pipe.zrem(keys.EXPIRING_RUNS, run_id)

    def forget_runs(self, run_ids: Sequence[str]) -> None:
        """Drop ids from every run index (their keys are gone)."""
        if not run_ids:
            return
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.RUNS, *run_ids)
            pipe.zrem(keys.EXPIRING_RUNS, *run_ids)
            pipe.srem(keys.ACTIVE_RUNS, *run_ids)
            pipe.execute()

    def sweep_expired(self, now: float | None = None, limit: int = SWEEP_BATCH) -> int:
        """Forget up to ``limit`` runs whose expiry time has passed; returns how many.

        A run whose keys still exist (clocks disagree, or it was kept) is not
        forgotten: its entry moves to the time Redis gives, or leaves the index.
        """
        now = time.time() if now is None else now
        due = [_text(m) for m in self.client.zrangebyscore(keys.EXPIRING_RUNS, "-inf", now, 0, limit)]
        if not due:
            return 0
        with self.client.pipeline(transaction=False) as pipe:
            for run_id in due:
                pipe.pttl(keys.RunKeys(run_id).meta)
            remaining = pipe.execute()
        gone = [r for r, ms in zip(due, remaining, strict=True) if int(ms) == -2]
        with self.client.pipeline(transaction=False) as pipe:
            for run_id, ms in zip(due, remaining, strict=True):
                if int(ms) >= 0:
                    pipe.zadd(keys.EXPIRING_RUNS, {run_id: now + int(ms) / 1000})
                elif int(ms) == -1:
                    pipe.zrem(keys.EXPIRING_RUNS, run_id)
            pipe.execute()
        self.forget_runs(gone)
        return len(gone)

    def prune_batch(self, run_ids: Sequence[str], cutoff: float, statuses: Iterable[str]) -> list[str]:
        """Delete those runs that are still finished with a status in ``statuses`` by ``cutoff``.

        One bounded script per run, pipelined; returns the ids deleted (and forgotten).
        """
        prune = PruneRun.register(self.client)
        with self.client.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                prune.queue(pipe, keys.RunKeys(run_id), cutoff=cutoff, statuses=list(statuses))
            outcomes = [prune.outcome(reply) for reply in pipe.execute()]
        pairs = list(zip(run_ids, outcomes, strict=True))
        deleted = [r for r, outcome in pairs if outcome is PruneOutcome.DELETED]
        self.forget_runs([r for r, outcome in pairs if outcome is not PruneOutcome.KEPT])
        return deleted


class ExpirySweeper:
    """Calls :meth:`RetentionMixin.sweep_expired` at most once per ``interval_s`` (a coordinator's step)."""

    def __init__(self, store: RetentionMixin, interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._store = store
        self._interval_s = interval_s
        self._next = 0.0

    def maybe_sweep(self, monotonic_now: float) -> int:
        """Sweep one batch when the interval has passed; the number of runs forgotten."""
        if monotonic_now < self._next:
            return 0
        self._next = monotonic_now + self._interval_s
        swept = self._store.sweep_expired()
        if swept:
            log.info("forgot %d expired runs from the run indexes", swept)
        return swept


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
    finished_at = _number(finished)
    if finished_at is None:
        return None
    return PruneCandidate(run_id, _text(workflow), _text(status), _number(created), finished_at)


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
        fresh = [(_text(m), float(s)) for m, s in rows if not (s == low and _text(m) in seen)]
        if not fresh:
            return
        yield [m for m, _ in fresh]
        top = fresh[-1][1]
        if top != low:
            low, seen = top, set()
        seen.update(m for m, s in fresh if s == top)
        if len(rows) < count:
            return


def _number(value: Any) -> float | None:
    try:
        number = float(_text(value)) if value not in (None, b"", "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
