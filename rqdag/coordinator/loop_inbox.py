"""A driver loop's inbox: the stream that tells it which of its runs have news.

The lease a loop takes names the loop's inbox in the run's meta (``inbox``).
The workers' finish and hand-back scripts, and the operators' writes (a
resolution, a signal, a cancel request, a child run's end), append the run's
events key to that stream in the same step as the event. So a loop blocks on
its inbox (with the submissions and wake streams), then reads the events
streams of the runs named there only: a round costs what the news costs, not
what the number of runs held costs. A run written to with no notice (a worker
of an older rqdag, an inbox lost with a Redis restart) is heard by the sweep:
every SWEEP_S the loop reads every one of its runs' streams, in chunks.

The stream lives while its loop keeps it: the loop appends a marker and sets
its expiry every REFRESH_S, and the scripts append only to an inbox that
exists, so the inbox of a coordinator that died expires within INBOX_TTL_MS,
and one lost (a Redis restarted empty, a flush) is back within REFRESH_S, the
sweep hearing the runs meanwhile.
"""

from __future__ import annotations

import contextlib
import time

import redis

from rqdag.shared.store.keys import INBOX_MAXLEN, coordinator_inbox
from rqdag.shared.store.records import text

INBOX_TTL_MS = 60_000
REFRESH_S = 2.0  # as often as the sweep: an inbox lost in a Redis restart is back this soon
SWEEP_S = 2.0
EVENTS_FIELD = b"e"


class LoopInbox:
    """The inbox stream of one driver loop: kept alive, read from where it was left."""

    def __init__(self, client: redis.Redis, owner: str, index: int) -> None:
        self._client = client
        self.key = coordinator_inbox(owner, index)
        self.last = b"0-0"
        self._next_refresh = 0.0
        self._next_sweep = time.monotonic() + SWEEP_S  # its runs come later

    def keep(self, now: float) -> None:
        """Create the stream, or extend its life, when REFRESH_S passed (raises RedisError)."""
        if now < self._next_refresh:
            return
        with self._client.pipeline(transaction=False) as pipe:
            pipe.xadd(self.key, {EVENTS_FIELD: b""}, maxlen=INBOX_MAXLEN, approximate=True)
            pipe.pexpire(self.key, INBOX_TTL_MS)
            pipe.execute()
        self._next_refresh = now + REFRESH_S

    def take(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> set[str]:
        """The events keys named by ``entries`` just read (the loop's markers left out)."""
        self.last = entries[-1][0]
        return {text(key) for _, fields in entries if (key := fields.get(EVENTS_FIELD))}

    def sweep_due(self, now: float) -> bool:
        """True every SWEEP_S: read every run's stream this round."""
        if now < self._next_sweep:
            return False
        self._next_sweep = now + SWEEP_S
        return True

    def close(self) -> None:
        """Delete the stream (the loop stops): the scripts stop writing to it."""
        with contextlib.suppress(redis.RedisError):  # else it expires on its own
            self._client.delete(self.key)
