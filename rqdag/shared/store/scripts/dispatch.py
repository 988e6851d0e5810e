"""The coordinator's dispatch step as one script: entries and RQ jobs under the lease."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.typing import EncodableT

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import ScriptCall, ScriptWrapper


@dataclass(frozen=True)
class QueuedJob:
    """One RQ job as RQ's enqueue writes it: its id, hash key, queue key and hash fields."""

    job_id: str
    key: str
    queue_key: str
    fields: Mapping[str, EncodableT]


class DispatchJobs(ScriptWrapper):
    """``dispatch_jobs.lua``: write dispatch entries and enqueue their RQ jobs, under the lease.

    One call is atomic and fenced; a caller with more attempts than a batch
    makes several calls (each attempt's entry and job land together).
    """

    name = "dispatch_jobs"

    def __call__(
        self,
        keys: RunKeys,
        *,
        lease: str,
        entries: Mapping[str, bytes],
        jobs: Sequence[QueuedJob],
        queues_key: str,
        client: redis.Redis | None = None,
    ) -> int | None:
        """How many jobs were enqueued; None when the lease is not held (nothing written)."""
        call = self.request(keys, lease=lease, entries=entries, jobs=jobs, queues_key=queues_key)
        return self.parse(self.send(call, client))

    def request(
        self,
        keys: RunKeys,
        *,
        lease: str,
        entries: Mapping[str, bytes],
        jobs: Sequence[QueuedJob],
        queues_key: str,
    ) -> ScriptCall:
        """One call's KEYS and ARGV (the parameters of :meth:`__call__`), for :meth:`many`."""
        script_keys = [keys.lease, keys.dispatch, queues_key]
        args: list[EncodableT] = [lease, len(entries)]
        for task, entry in entries.items():
            args += (task, entry)
        for job in jobs:
            script_keys += (job.key, job.queue_key)
            args += (job.job_id, len(job.fields))
            for field, value in job.fields.items():
                args += (field, value)
        return script_keys, args

    def parse(self, reply: Any) -> int | None:
        """How many jobs a call enqueued; None when the lease was not held (nothing written)."""
        written = int(reply)
        return None if written < 0 else written

    def many(self, calls: Sequence[ScriptCall], client: redis.Redis) -> list[int | Exception | None]:
        """Calls of many runs (each fenced by its own lease) in one round trip: each one's answer
        or error."""
        return [r if isinstance(r, Exception) else self.parse(r) for r in self._eval_many(calls, client)]
