"""The runs list: pages read from the ``rqdag:runs`` sorted set by rank, never the whole set.

Without a filter a page is one ``ZREVRANGE`` of its ranks. With a filter (status,
workflow, part of the run id) the ranks are read in chunks from ``offset`` on,
each chunk filtered with one pipelined ``HMGET`` of two meta fields, until the
page is full or ``SCAN_BUDGET`` ranks were read (``ID_SCAN_BUDGET`` for a search
by run id alone, which reads no meta); the page then says where the next one
starts. Counts by status come from each run's results hash when it
holds at most ``COUNT_LIMIT`` entries (its statuses are read, not its data).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rqdag.cli.common import meta_to_dict
from rqdag.cli.output import IN_FLIGHT, TERMINAL
from rqdag.errors import DecodeError
from rqdag.shared.model.codec import loads
from rqdag.shared.store.keys import RUN_ID_PATTERN, RUNS, RunKeys
from rqdag.shared.store.records import parse_meta, text
from rqdag.shared.store.runs import RunStore

SCAN_CHUNK = 500
SCAN_BUDGET = 5_000
ID_SCAN_CHUNK = 5_000  # a search by run id alone reads ids only: far cheaper per rank
ID_SCAN_BUDGET = 100_000
COUNT_LIMIT = 5_000
MAX_LIMIT = 200

_STATUS_PREFIX = re.compile(rb'^\{"status":"([a-z_]+)"')
_STATE_FIELD = re.compile(rb'"state":"([a-z_]+)"')


@dataclass(frozen=True)
class RunFilter:
    """What the runs list is narrowed to; every field is optional."""

    status: str | None = None
    workflow: str | None = None
    query: str | None = None  # a part of the run id

    @property
    def active(self) -> bool:
        """True when anything is filtered."""
        return bool(self.status or self.workflow or self.query)

    def keeps_id(self, run_id: str) -> bool:
        """True when the run id passes the id search."""
        return not self.query or self.query.lower() in run_id.lower()


@dataclass(frozen=True)
class RunsPage:
    """One page of the runs list."""

    runs: list[dict[str, Any]]
    offset: int
    limit: int
    total: int  # runs in the sorted set, filtered or not
    next_offset: int | None  # rank where the next page starts, None at the end
    scanned: int = 0  # ranks read to fill this page
    filters: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``GET /api/runs`` document."""
        return {
            "runs": self.runs,
            "offset": self.offset,
            "limit": self.limit,
            "total": self.total,
            "next_offset": self.next_offset,
            "scanned": self.scanned,
            "filters": self.filters,
        }


def list_page(store: RunStore, filt: RunFilter, offset: int = 0, limit: int = 50) -> RunsPage:
    """The page of runs from rank ``offset`` (newest first) that pass ``filt``."""
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(offset, 0)
    total = int(store.client.zcard(RUNS))
    ids, next_offset, scanned = _matching_ids(store, filt, offset, limit, total)
    return RunsPage(
        runs=run_rows(store, ids),
        offset=offset,
        limit=limit,
        total=total,
        next_offset=next_offset,
        scanned=scanned,
        filters={"status": filt.status, "workflow": filt.workflow, "q": filt.query},
    )


def _matching_ids(
    store: RunStore, filt: RunFilter, offset: int, limit: int, total: int
) -> tuple[list[str], int | None, int]:
    """Ids of the page, the rank after it (None at the end) and how many ranks were read."""
    if not filt.active:
        ids = [text(i) for i in store.client.zrevrange(RUNS, offset, offset + limit - 1)]
        after = offset + len(ids)
        return ids, (after if after < total else None), len(ids)
    matched: list[str] = []
    position = offset
    by_meta = bool(filt.status or filt.workflow)
    size, budget = (SCAN_CHUNK, SCAN_BUDGET) if by_meta else (ID_SCAN_CHUNK, ID_SCAN_BUDGET)
    while position < total and position - offset < budget:
        chunk = [text(i) for i in store.client.zrevrange(RUNS, position, position + size - 1)]
        if not chunk:
            break
        for rank, run_id in _filter_chunk(store, filt, position, chunk):
            matched.append(run_id)
            if len(matched) == limit:
                after = rank + 1
                return matched, (after if after < total else None), after - offset
        position += len(chunk)
    return matched, (position if position < total else None), position - offset


def _filter_chunk(
    store: RunStore, filt: RunFilter, position: int, chunk: Sequence[str]
) -> list[tuple[int, str]]:
    """The (rank, id) pairs of ``chunk`` that pass ``filt``."""
    kept = [(position + i, r) for i, r in enumerate(chunk) if filt.keeps_id(r) and RUN_ID_PATTERN.match(r)]
    if not (filt.status or filt.workflow) or not kept:
        return kept
    with store.client.pipeline(transaction=False) as pipe:
        for _, run_id in kept:
            pipe.hmget(RunKeys(run_id).meta, ["status", "workflow"])
        replies: list[list[Any]] = pipe.execute()
    out = []
    for (rank, run_id), (status, workflow) in zip(kept, replies, strict=True):
        if status is None:
            continue  # deleted meanwhile
        if filt.status and text(status) != filt.status:
            continue
        if filt.workflow and text(workflow or b"") != filt.workflow:
            continue
        out.append((rank, run_id))
    return out


def run_rows(store: RunStore, run_ids: Sequence[str], now: float | None = None) -> list[dict[str, Any]]:
    """A row per run (the ``rqdag runs --json`` fields, plus ``counts`` and ``duration_s``)."""
    now = time.time() if now is None else now
    run_ids = [r for r in run_ids if RUN_ID_PATTERN.match(r)]  # a stray member of the set is no run
    with store.client.pipeline(transaction=False) as pipe:
        for run_id in run_ids:
            rk = RunKeys(run_id)
            pipe.hgetall(rk.meta)
            pipe.hlen(rk.results)
            pipe.hlen(rk.dispatch)
        replies = pipe.execute()
    rows = []
    countable = []
    for i, run_id in enumerate(run_ids):
        raw, done, in_flight = replies[3 * i : 3 * i + 3]
        if not raw:
            continue
        try:
            meta = parse_meta(run_id, raw)
        except DecodeError:
            continue
        end = meta.finished_at if meta.finished_at is not None else now
        row = {
            **meta_to_dict(meta),
            "done": int(done),
            "age_s": round(max(now - meta.created_at, 0.0), 3),
            "duration_s": round(max(end - meta.created_at, 0.0), 3),
            "counts": None,
        }
        rows.append(row)
        if int(done) <= COUNT_LIMIT and int(in_flight) <= COUNT_LIMIT:
            countable.append(row)
    _add_counts(store, countable)
    return rows


def _add_counts(store: RunStore, rows: list[dict[str, Any]]) -> None:
    """Fill ``counts`` of each row from the statuses in its results and dispatch hashes."""
    if not rows:
        return
    with store.client.pipeline(transaction=False) as pipe:
        for row in rows:
            rk = RunKeys(row["run_id"])
            pipe.hvals(rk.results)
            pipe.hvals(rk.dispatch)
        replies = pipe.execute()
    for i, row in enumerate(rows):
        counts = dict.fromkeys((*TERMINAL, *IN_FLIGHT), 0)
        for value in replies[2 * i]:
            status = _status_of(value)
            counts[status] = counts.get(status, 0) + 1
        for value in replies[2 * i + 1]:
            found = _STATE_FIELD.search(value)
            state = found.group(1).decode() if found else "queued"
            counts[state] = counts.get(state, 0) + 1
        total = max(row["task_count"], row["done"])
        counts["pending"] = max(total - sum(counts.values()), 0)
        row["counts"] = counts


def _status_of(value: bytes) -> str:
    """A stored result's status, read from its first field (rqdag writes ``status`` first)."""
    found = _STATUS_PREFIX.match(value)
    if found:
        return found.group(1).decode()
    try:
        body = loads(value, what="a result")
    except DecodeError:
        return "failure"
    status = body.get("status") if isinstance(body, dict) else None
    return status if status in TERMINAL else "failure"
