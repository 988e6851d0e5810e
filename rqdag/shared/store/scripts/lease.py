"""The scripts of the run lease: acquire, renew, release (``lua/*_lease.lua``)."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.client import Pipeline

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import ScriptCall, ScriptWrapper, text
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


class RenewLeases(ScriptWrapper):
    """``renew_leases.lua``: renew a batch of leases in one script run, each fenced by its value."""

    name = "renew_leases"

    def __call__(
        self, leases: Sequence[tuple[RunKeys, str]], *, ttl_ms: int, client: redis.Redis | None = None
    ) -> list[bool]:
        """For each (run keys, lease value "owner|fence"): True when renewed, False when lost."""
        if not leases:
            return []
        reply = self._eval(
            [keys.lease for keys, _ in leases], [ttl_ms, *(value for _, value in leases)], client
        )
        return [bool(int(renewed)) for renewed in reply]

    def many(
        self, batches: Sequence[Sequence[tuple[RunKeys, str]]], *, ttl_ms: int, client: redis.Redis
    ) -> list[list[bool] | Exception]:
        """Each batch as its own script run, all in one round trip: each batch's answers (as
        :meth:`__call__`'s), or the error that batch met (its leases were not renewed)."""
        calls: list[ScriptCall] = [
            ([keys.lease for keys, _ in batch], [ttl_ms, *(value for _, value in batch)]) for batch in batches
        ]
        return [
            reply if isinstance(reply, Exception) else [bool(int(renewed)) for renewed in reply]
            for reply in self._eval_many(calls, client)
        ]


class ReleaseLease(ScriptWrapper):
    """``release_lease.lua``: hand the lease back at once, if still held."""

    name = "release_lease"

    def __call__(self, keys: RunKeys, *, lease: str, client: redis.Redis | None = None) -> bool:
        """True when released, False when the caller did not hold ``lease``."""
        return bool(self._eval([keys.lease], [lease], client))
