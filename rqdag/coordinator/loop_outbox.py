"""The dispatch scripts of a driver loop's round, sent together in one round trip.

Stepping many runs, a loop would send one ``dispatch_jobs`` script run a step. A
run's dispatcher given the loop's :class:`DispatchOutbox` instead holds each call
here; the loop sends all of them once it has stepped the runs due, before it
blocks again (:meth:`DispatchOutbox.flush`). Each call is still its own script
run, atomic and fenced by its run's lease, so a call refused (the lease lost) or
failed (Redis full, or away) writes nothing; its run leaves the loop as it would
had its step raised, and is loaded again from Redis by whoever drives it next.

Until the flush, the dispatcher's watchdog does not know the attempts it
holds (they are not in Redis either); a run's first dispatch, in its opening
step, is sent at once (a service ends a full-Redis episode when it is accepted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from rqdag.errors import LeaseLostError
from rqdag.shared.store.scripts.base import ScriptCall
from rqdag.shared.store.scripts.dispatch import DispatchJobs


@dataclass(frozen=True)
class HeldCall:
    """One run's dispatch call, and what its dispatcher does once Redis accepted it."""

    run_id: str
    call: ScriptCall
    accepted: Callable[[], None]


class DispatchOutbox:
    """The dispatch calls a loop's runs made in a round, until the loop sends them."""

    def __init__(self, client: redis.Redis, script: DispatchJobs) -> None:
        self._client = client
        self._script = script
        self._held: list[HeldCall] = []
        self._runs: set[str] = set()  # the runs of the calls held (asked after each run's step)

    def hold(self, run_id: str, call: ScriptCall, accepted: Callable[[], None]) -> None:
        """Keep a run's call for the next :meth:`flush`."""
        self._held.append(HeldCall(run_id, call, accepted))
        self._runs.add(run_id)

    def holds(self, run_id: str) -> bool:
        """True when a call of ``run_id`` waits to be sent."""
        return run_id in self._runs

    def flush(self) -> dict[str, Exception]:
        """Send every call held, in the order held; the runs whose call was refused or failed,
        with why. Such a run's other calls may have been written or not, each whole: it is
        loaded again from Redis, whose entries say which."""
        held, self._held = self._held, []
        self._runs.clear()
        if not held:
            return {}
        try:
            replies = self._script.many([h.call for h in held], self._client)
        except redis.RedisError as exc:  # nothing known of any call: each run meets the error
            return {h.run_id: exc for h in held}
        failed: dict[str, Exception] = {}
        for item, reply in zip(held, replies, strict=True):
            if item.run_id in failed:
                continue
            if isinstance(reply, Exception):
                failed[item.run_id] = reply
            elif reply is None:
                failed[item.run_id] = LeaseLostError(f"run '{item.run_id}': lease lost before dispatch")
            else:
                item.accepted()
        return failed
