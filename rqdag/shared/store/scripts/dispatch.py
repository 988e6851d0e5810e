"""The coordinator's dispatch step as one script: entries and RQ jobs under the lease."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
from redis.typing import EncodableT

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import ScriptWrapper


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
        script_keys = [keys.lease, keys.dispatch, queues_key]
        args: list[EncodableT] = [lease, len(entries)]
        for task, entry in entries.items():
            args += (task, entry)
        for job in jobs:
            script_keys += (job.key, job.queue_key)
            args += (job.job_id, len(job.fields))
            for field, value in job.fields.items():
                args += (field, value)
        written = int(self._eval(script_keys, args, client))
        return None if written < 0 else written
