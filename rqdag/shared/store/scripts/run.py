"""The coordinator's scripts on a run: status, decided results, lost attempts, pruning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline
from redis.typing import EncodableT

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import EVENTS_MAXLEN, ScriptWrapper
from rqdag.shared.store.scripts.outcomes import DecidedResult, PruneOutcome, VoidOutcome


class SetRunStatus(ScriptWrapper):
    """``set_run_status.lua``: record the run's status, under the lease."""

    name = "set_run_status"

    def __call__(
        self, keys: RunKeys, *, lease: str, status: str, now: float, client: redis.Redis | None = None
    ) -> bool:
        """True when written, False when the lease is not held (nothing written)."""
        args: list[EncodableT] = [lease, status, repr(now), EVENTS_MAXLEN]
        return int(self._eval([keys.lease, keys.meta, keys.events], args, client)) > 0


class RecordResults(ScriptWrapper):
    """``record_results.lua``: write results the coordinator decided, under the lease."""

    name = "record_results"

    def __call__(
        self,
        keys: RunKeys,
        *,
        lease: str,
        results: Sequence[DecidedResult],
        client: redis.Redis | None = None,
    ) -> int | None:
        """How many were written (a success already recorded is kept); None when the lease is not held."""
        args: list[EncodableT] = [lease, EVENTS_MAXLEN]
        for decided in results:
            args += decided
        written = int(self._eval([keys.lease, keys.results, keys.dispatch, keys.events], args, client))
        return None if written < 0 else written


class VoidAttempt(ScriptWrapper):
    """``void_attempt.lua``: declare an attempt lost (``running``) or vanished (``queued``)."""

    name = "void_attempt"

    def __call__(
        self,
        keys: RunKeys,
        *,
        lease: str,
        task: str,
        token: str,
        state: str,
        client: redis.Redis | None = None,
    ) -> VoidOutcome:
        """Void the attempt ``token`` of ``task`` if it is still in ``state``."""
        args: list[EncodableT] = [lease, task, token, EVENTS_MAXLEN, state]
        return VoidOutcome(int(self._eval([keys.lease, keys.dispatch, keys.events], args, client)))


class PruneRun(ScriptWrapper):
    """``prune_run.lua``: delete one finished run if it is still finished and old enough.

    Prune deletes runs in batches, so besides the direct call it can be queued on a
    pipeline (:meth:`queue`) and its reply read with :meth:`outcome`.
    """

    name = "prune_run"

    def __call__(
        self, keys: RunKeys, *, cutoff: float, statuses: Sequence[str], client: redis.Redis | None = None
    ) -> PruneOutcome:
        """What happened to the run (deleted, kept because it changed, or gone already)."""
        return self.outcome(self._eval(self._keys(keys), self._args(cutoff, statuses), client))

    def queue(self, pipe: Pipeline, keys: RunKeys, *, cutoff: float, statuses: Sequence[str]) -> None:
        """Queue the call on ``pipe``; read its reply from ``pipe.execute()`` with :meth:`outcome`."""
        self._script(self._keys(keys), self._args(cutoff, statuses), pipe)

    def outcome(self, reply: Any) -> PruneOutcome:
        """The typed answer of one reply."""
        try:
            return PruneOutcome(int(reply))
        except (TypeError, ValueError):
            raise self._unexpected(reply) from None

    @staticmethod
    def _keys(keys: RunKeys) -> list[str]:
        return [
            keys.meta,
            keys.definition,
            keys.results,
            keys.dispatch,
            keys.events,
            keys.lease,
            keys.audit,
            keys.logs,
            keys.signals,
            keys.timers,
        ]

    @staticmethod
    def _args(cutoff: float, statuses: Sequence[str]) -> list[EncodableT]:
        return [repr(cutoff), *statuses]
