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
``prune`` itself (reading the index, the criteria, the batches) is in :mod:`.prune`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from rqdag.shared.model.vocabulary import FINISHED_RUN_STATUSES
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.records import PARENT_FIELDS, parent_of
from rqdag.shared.store.scripts.outcomes import PruneOutcome
from rqdag.shared.store.scripts.run import PruneRun

log = logging.getLogger("rqdag.retention")

DEFAULT_RETENTION_S = 7 * 86400.0
EXPIRING_STATUSES = ("succeeded", "failed", "cancelled")
SWEEP_BATCH = 500
SWEEP_INTERVAL_S = 60.0
RESUME_MARGIN_S = 1.0  # a run that expires sooner than this is not resumed: it may vanish midway


def retention_meta(workflow: Workflow) -> dict[str | bytes, str | bytes | int | float]:
    """The meta field a new run stores: its workflow's retention, or '' for the coordinator's."""
    return {"retention_s": "" if workflow.retention_s is None else workflow.retention_s}


def retention_of(stored: Any, default_s: float) -> float:
    """Seconds a finished run is kept: its stored ``retention_s``, else ``default_s``."""
    value = stored_number(stored)
    return default_s if value is None or value < 0 else value


CLOSING_FIELDS = ("status", "finished_at", "retention_s")


def expiry_of(status: Any, finished_at: Any, stored: Any, default_s: float) -> float | None:
    """When a run with these meta fields expires (unix time); None when it is kept."""
    if stored_text(status) not in EXPIRING_STATUSES:
        return None
    seconds = retention_of(stored, default_s)
    if seconds <= 0:
        return None
    return (stored_number(finished_at) or time.time()) + seconds


def queue_expiry(pipe: redis.client.Pipeline, run_id: str, at: float) -> None:
    """Queue on ``pipe`` what makes the run's keys expire at ``at`` and indexes it so."""
    for key in keys.RunKeys(run_id).retained():
        pipe.pexpireat(key, int(at * 1000))
    pipe.zadd(keys.EXPIRING_RUNS, {run_id: at})


class RetentionMixin:
    """RunStore's writes for retention: expiring, keeping, deleting runs and cleaning indexes."""

    client: redis.Redis

    def expire_finished_run(self, run_id: str, default_s: float) -> float | None:
        """Set the keys of a finished run to expire; returns when (unix time), or None if kept.

        Idempotent: the time derives from the run's ``finished_at``, not from now.
        """
        rk = keys.RunKeys(run_id)
        status, finished_at, stored = self.client.hmget(rk.meta, ["status", "finished_at", "retention_s"])
        at = expiry_of(status, finished_at, stored, default_s)
        if at is None:
            return None
        with self.client.pipeline(transaction=True) as pipe:
            queue_expiry(pipe, run_id, at)
            pipe.execute()
        return at

    def close_finished_run(self, run_id: str, default_s: float) -> tuple[str, str, int] | None:
        """A run's driver recorded its final status: set its keys to expire (as
        :meth:`expire_finished_run`) and drop it from the coordinators' work list, in one
        MULTI/EXEC with its meta watched, unless a resume opened it again meanwhile (then
        neither: it stays on the list, kept). Returns its parent, as :meth:`read_parent`.
        """
        rk = keys.RunKeys(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(rk.meta)  # type: ignore[no-untyped-call]
                raw: Any = pipe.hmget(rk.meta, [*CLOSING_FIELDS, *PARENT_FIELDS])
                status, finished_at, stored = raw[: len(CLOSING_FIELDS)]
                parent = parent_of(raw[len(CLOSING_FIELDS) :])
                if stored_text(status) not in FINISHED_RUN_STATUSES:
                    return parent  # resumed meanwhile: its new epoch needs a coordinator
                pipe.multi()
                at = expiry_of(status, finished_at, stored, default_s)
                if at is not None:
                    queue_expiry(pipe, run_id, at)
                pipe.srem(keys.ACTIVE_RUNS, run_id)
                pipe.execute()
            except redis.WatchError:
                pass  # its meta changed meanwhile: a poll finds it on the list and looks again
        return parent

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
        due = [stored_text(m) for m in self.client.zrangebyscore(keys.EXPIRING_RUNS, "-inf", now, 0, limit)]
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


def stored_number(value: Any) -> float | None:
    """A stored number (bytes, text or None) as a finite float; None when it is empty or no number."""
    try:
        number = float(stored_text(value)) if value not in (None, b"", "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def stored_text(value: Any) -> str:
    """A Redis reply as text ('' for None)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
