"""The submissions stream: the nudge that wakes every coordinator for a new or resumed run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline

from rqdag.shared.store import keys
from rqdag.shared.store.records import text

RUN_FIELD = "run"


def announce_run(client: redis.Redis, run_id: str) -> None:
    """Wake every coordinator service at once for a new (or resumed) run.

    The run itself is already stored: this entry is only a nudge, so a coordinator
    that misses it still finds the run on its next poll.
    """
    queue_announcement(client, run_id)


def queue_announcement(pipe: Pipeline | redis.Redis, run_id: str) -> None:
    """Append the nudge for ``run_id`` (sent at once on a client; queued on a pipeline, so
    that it goes in the same MULTI/EXEC as the run's own writes)."""
    pipe.xadd(keys.SUBMISSIONS, {RUN_FIELD: run_id}, maxlen=keys.SUBMISSIONS_MAXLEN, approximate=True)


def announced_runs(entries: Sequence[tuple[Any, dict[Any, Any]]]) -> list[str]:
    """The run ids of submissions entries as XREAD returns them, oldest first, each once."""
    seen: dict[str, None] = {}
    for _id, fields in entries:
        raw = fields.get(RUN_FIELD.encode(), fields.get(RUN_FIELD))
        if raw:
            seen.setdefault(text(raw), None)
    return list(seen)
