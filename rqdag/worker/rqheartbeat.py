"""RQ's worker heartbeat, sent in one round trip and at most once a second.

Stock RQ refreshes a worker's registration (``HSET last_heartbeat``, two
``EXPIRE``) three times around every job, each command a round trip of its own:
nine of the twenty round trips a no-op job costs. The registration lives for
minutes (``worker_ttl``), so refreshing it once a second keeps it just as alive
for ``rq info`` and RQ's dead-worker sweep.
"""

from __future__ import annotations

import time
from typing import Any

from rq.worker.base import BaseWorker

MIN_HEARTBEAT_INTERVAL_S = 1.0


class ThrottledHeartbeat(BaseWorker):
    """A worker whose own heartbeats (not its jobs') are pipelined and throttled."""

    _last_beat_at: float = float("-inf")

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """Refresh the worker's registration; a no-op within a second of the last refresh.

        A call inside a caller's pipeline, or with an explicit ``timeout`` (the
        forking worker's monitor), is never skipped.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        now = time.monotonic()
        if timeout is None and now - self._last_beat_at < MIN_HEARTBEAT_INTERVAL_S:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipeline=pipe)
            pipe.execute()
        self._last_beat_at = now
