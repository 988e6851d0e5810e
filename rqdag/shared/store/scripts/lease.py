"""The scripts of the run lease: acquire, renew, release (``lua/*_lease.lua``)."""

from __future__ import annotations

import redis
from redis.client import Pipeline

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import ScriptWrapper, text
from rqdag.shared.store.scripts.outcomes import Acquired, LeaseRefusal


class AcquireLease(ScriptWrapper):
    """``acquire_lease.lua``: take (or keep) the lease of a run, with a fencing token, and note
    the run's driver when the fence is not the one the caller knew."""

    name = "acquire_lease"

    def __call__(
        self,
        keys: RunKeys,
        *,
        owner: str,
        ttl_ms: int,
        known: int = 0,
        inbox: str = "",
        client: redis.Redis | None = None,
    ) -> Acquired | LeaseRefusal:
        """The fence now held by ``owner`` (and the driver noted before it), or why there is none.

        ``inbox``: the stream the caller reads the run's news from (see
        :func:`~rqdag.shared.store.keys.coordinator_inbox`; '' for none), noted with the driver."""
        reply = self._eval([keys.lease, keys.meta], [owner, ttl_ms, known, inbox], client)
        fence = int(reply[0])
        if fence <= 0:
            return LeaseRefusal(fence)
        noted, previous = bool(int(reply[1])), reply[2]
        return Acquired(fence, noted, None if previous is None else text(previous))


class RenewLease(ScriptWrapper):
    """``renew_lease.lua``: extend the lease if the caller still holds exactly this value."""

    name = "renew_lease"

    def __call__(self, keys: RunKeys, *, lease: str, ttl_ms: int, client: redis.Redis | None = None) -> bool:
        """True when renewed, False when the lease (value ``"owner|fence"``) is lost."""
        return bool(self._eval([keys.lease], [lease, ttl_ms], client))

    def queue(self, pipe: Pipeline, keys: RunKeys, *, lease: str, ttl_ms: int) -> None:
        """Queue the renewal on ``pipe``: its reply at ``execute()`` is 1 (renewed) or 0 (lost)."""
        self._script([keys.lease], [lease, ttl_ms], pipe)


class ReleaseLease(ScriptWrapper):
    """``release_lease.lua``: hand the lease back at once, if still held."""

    name = "release_lease"

    def __call__(self, keys: RunKeys, *, lease: str, client: redis.Redis | None = None) -> bool:
        """True when released, False when the caller did not hold ``lease``."""
        return bool(self._eval([keys.lease], [lease], client))
