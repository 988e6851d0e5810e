"""How a coordinator service hears of new runs at once: it blocks on the submissions stream.

``Client.submit`` and ``Client.resume`` append the run's id to ``rqdag:submissions``
(:func:`rqdag.shared.store.submissions.announce_run`); every service blocks on it between its scans
of the active runs, so all of them wake and race for the new run's lease as they
would at a poll. An entry names its run, so a service hands that run to a loop at
once, with no scan of the active runs first (the loop's lease acquisition decides
who drives it). An entry is only a nudge: the poll stays, for one that is missed.
"""

from __future__ import annotations

from typing import Any

import redis

from rqdag.shared.store import keys
from rqdag.shared.store.submissions import announced_runs

# The service blocks in slices this long, so that a stop is seen within one
# (redis-py's socket timeout must exceed it: see rqdag/shared/connect.py).
WAKE_SLICE_S = 0.25


class SubmissionWatch:
    """Blocks on the submissions stream (``rqdag:submissions``) from where it last read."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._last: bytes | None = None

    def start(self) -> None:
        """Remember the newest entry (once): what is appended after it wakes :meth:`wait`.

        Called before a scan of the active runs, so a run submitted during the scan
        wakes the next wait instead of being missed until the next poll.
        """
        if self._last is None:
            newest: Any = self._client.xrevrange(keys.SUBMISSIONS, count=1)
            self._last = newest[0][0] if newest else b"0-0"

    def wait(self, timeout_s: float) -> list[str]:
        """Block up to ``timeout_s`` for new entries; the runs they announce (empty: none came)."""
        last = self._last if self._last is not None else b"$"
        reply: Any = self._client.xread(
            {keys.SUBMISSIONS: last}, count=keys.SUBMISSIONS_MAXLEN, block=max(int(timeout_s * 1000), 1)
        )
        for _stream, entries in reply or []:
            if entries:
                self._last = entries[-1][0]
                return announced_runs(entries)
        return []
