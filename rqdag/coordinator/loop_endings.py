"""How a run leaves a driver loop: it ended, failed, or its lease was lost; the loop stops."""

from __future__ import annotations

import logging
import queue

import redis

from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.lease import Lease, LeaseKeeper
from rqdag.coordinator.loop_hooks import LoopHooks
from rqdag.coordinator.loop_inbox import LoopInbox
from rqdag.coordinator.loop_streams import RunStreams
from rqdag.coordinator.loop_timers import DueTimes
from rqdag.coordinator.server_clock import ServerClock
from rqdag.errors import LeaseLostError

log = logging.getLogger("rqdag.coordinator")


class LoopEndingsMixin:
    """:class:`~rqdag.coordinator.multiplex.DriverLoop`'s ways for a run to leave it."""

    clock: ServerClock
    inbox: LoopInbox
    _runs: dict[str, RunDriver]
    _streams: RunStreams
    _due: DueTimes
    _keeper: LeaseKeeper
    _hooks: LoopHooks
    _handed: queue.SimpleQueue[RunDriver]

    def _step_failed(self, run_id: str, exc: Exception) -> None:
        """The run's step (or check) raised ``exc``: it leaves this loop."""
        driver = self._runs[run_id]
        self._forget(run_id)
        if isinstance(exc, LeaseLostError):
            log.warning("%s; another coordinator goes on with the run", exc)
            self._end(driver)
            return
        if isinstance(exc, redis.RedisError):
            self.clock.forget()
        self._fail(driver, exc)

    def _drop_lost(self, lease: Lease) -> None:
        driver = self._runs.get(lease.run_id)
        if driver is None or driver.lease is not lease:
            return
        log.warning(
            "run '%s': lease lost by %s; another coordinator goes on with the run", lease.run_id, lease.owner
        )
        self._forget(lease.run_id)
        self._end(driver)

    def _forget(self, run_id: str) -> None:
        driver = self._runs.pop(run_id, None)
        if driver is not None:
            self._streams.remove(driver)
        self._due.drop(run_id)

    def _end(self, driver: RunDriver) -> None:
        self._keeper.drop(driver.lease)
        driver.close()
        self._hooks.ended(driver)

    def _fail(self, driver: RunDriver, exc: Exception) -> None:
        self._keeper.drop(driver.lease)
        try:
            driver.close()
        finally:
            try:
                self._hooks.failed(driver.run_id, exc)
            except Exception:  # saying why must not stop the loop's other runs
                log.exception("run '%s': could not report its failure (%s)", driver.run_id, exc)

    def _leave_all(self) -> None:
        """Stopping: hand every lease back so another coordinator takes the runs at once."""
        for run_id, driver in list(self._runs.items()):
            self._forget(run_id)
            self._end(driver)
        while not self._handed.empty():
            self._end(self._handed.get_nowait())
        self.inbox.close()

