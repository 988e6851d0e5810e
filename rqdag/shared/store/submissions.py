"""The submissions stream: the nudge that wakes every coordinator for a new or resumed run."""

from __future__ import annotations

import redis

from rqdag.shared.store import keys


def announce_run(client: redis.Redis, run_id: str) -> None:
    """Wake every coordinator service at once for a new (or resumed) run.

    The run itself is already stored: this entry is only a nudge, so a coordinator
    that misses it still finds the run on its next poll.
    """
    client.xadd(keys.SUBMISSIONS, {"run": run_id}, maxlen=keys.SUBMISSIONS_MAXLEN, approximate=True)
