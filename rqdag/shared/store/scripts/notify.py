"""The script that tells a run's driver loop of news an operator wrote (``notify_driver.lua``)."""

from __future__ import annotations

import redis
from redis.client import Pipeline

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import ScriptWrapper


class NotifyDriver(ScriptWrapper):
    """``notify_driver.lua``: append the run's events key to its driver loop's inbox (see
    :func:`~rqdag.shared.store.keys.coordinator_inbox`), when a loop drives the run."""

    name = "notify_driver"

    def __call__(self, keys: RunKeys, *, client: redis.Redis | None = None) -> None:
        """Tell the run's driver loop now (outside a MULTI/EXEC)."""
        self._eval([keys.events], [], client)

    def queue(self, pipe: Pipeline, keys: RunKeys) -> None:
        """Queue the notice on ``pipe``, after the event it tells of (same MULTI/EXEC)."""
        self._script([keys.events], [], pipe)
