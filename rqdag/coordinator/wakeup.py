"""How a coordinator service hears of new runs at once: its driver loops read the submissions stream.

``Client.submit`` and ``Client.resume`` append the run's id to ``rqdag:submissions``
(:func:`rqdag.shared.store.submissions.announce_run`). Every driver loop of every
service reads that stream in the same blocking XREAD as its runs' events
(:mod:`.multiplex`), so a new run wakes them all, and the first loop of a service
to claim the run opens it at once: no scan of the active runs, no hand-over to
another thread, no lease read first (the lease acquisition decides which
coordinator drives it). An entry is only a nudge: the service's scan of the
active runs every ``poll_s`` stays, for one that is missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from rqdag.shared.store import keys
from rqdag.shared.store.submissions import announced_runs


def newest_submission(client: redis.Redis) -> bytes:
    """The id of the newest submissions entry (``0-0``: none): what is appended after it is news."""
    newest: Any = client.xrevrange(keys.SUBMISSIONS, count=1)
    return newest[0][0] if newest else b"0-0"


class SubmissionWatch:
    """Where a loop is in the submissions stream (``rqdag:submissions``), for its XREAD."""

    def __init__(self, last: bytes) -> None:
        """``last``: the entry read last (:func:`newest_submission` of before the service's
        first scan, so that a run submitted during that scan is heard of, not missed)."""
        self.last = last

    def take(self, entries: Sequence[tuple[Any, dict[Any, Any]]]) -> list[str]:
        """The runs that ``entries`` (the stream's part of a read) announce; reads on after them."""
        if entries:
            self.last = entries[-1][0]
        return announced_runs(entries)
