"""DriverLoop: one thread steps many runs, reading all their event streams in one XREAD.

A coordinator service runs a few loops instead of a thread per run. A loop
holds open :class:`RunDriver` objects (each under its own lease) and, in turn:
admits the runs handed to it (lease, load, first dispatch), reads every run's
events stream at once (``XREAD BLOCK ... STREAMS e1 e2 ... id1 id2 ...``, plus
the coordinator's wake stream so a new run is admitted at once), renews the due
leases in one pipeline, reads the runs' cancel fields in one pipeline, and
steps each run that heard something or whose timer (retry, time-out, deadline,
watchdog check) is due. On Redis Cluster the streams of one read must share a
hash slot: a loop would group its runs by slot and read each group (not done:
rqdag's keys do not share hash tags today).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.lease import Lease, renew_leases
from rqdag.errors import LeaseLostError
from rqdag.shared.store.keys import RunKeys, coordinator_wake
from rqdag.shared.store.records import text
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts

log = logging.getLogger("rqdag.coordinator")

BLOCK_S = 0.5
READ_COUNT = 1_000  # per stream and read
CANCEL_CHECK_S = 0.5
ADMIT_BATCH = 50  # runs opened between two reads: the runs already open are stepped meanwhile
NEVER = float("inf")


@dataclass
class LoopHooks:
    """What a loop tells its service: a run ended here (its status, or None: it left it)
    or failed (the exception), and that a shared read failed or went through."""

    ended: Callable[[RunDriver], None]
    failed: Callable[[str, Exception], None]
    redis_failed: Callable[[redis.RedisError], None]


class DriverLoop:
    """One thread driving many runs of one coordinator (see the module docstring)."""

    def __init__(
        self, client: redis.Redis, scripts: Scripts, owner: str, hooks: LoopHooks, stop: threading.Event
    ) -> None:
        self._client = client
        self._scripts = scripts
        self._hooks = hooks
        self._stop = stop
        self._store = RunStore(client)
        self._owner = owner
        self._wake_key = coordinator_wake(owner)
        self._wake_id = b"0-0"
        self._inbox: queue.SimpleQueue[RunDriver] = queue.SimpleQueue()
        self._runs: dict[str, RunDriver] = {}
        self._due: dict[str, float] = {}
        self._by_key: dict[str, str] = {}  # events stream -> run id
        self._next_cancel_check = 0.0
        self.thread = threading.Thread(target=self._serve, name=f"rqdag-loop-{id(self):x}", daemon=True)

    def hand(self, driver: RunDriver) -> None:
        """Give the loop a run to drive (from the service's thread)."""
        self._inbox.put(driver)
        self._store.wake_coordinator(self._owner, driver.run_id)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._admit()
                    self._read(time.monotonic())
                    self._housekeep(time.monotonic())
                except redis.RedisError as exc:  # a shared read: each run finds out in its own step
                    self._hooks.redis_failed(exc)
                    self._stop.wait(BLOCK_S)
                self._step_due(time.monotonic())
        finally:
            self._leave_all()

    # ---- admission ---------------------------------------------------------------

    def _admit(self) -> None:
        """Open up to ADMIT_BATCH runs handed over, renewing the others' leases between."""
        for _ in range(ADMIT_BATCH):
            try:
                driver = self._inbox.get_nowait()
            except queue.Empty:
                return
            if self._stop.is_set():
                self._end(driver)
                continue
            try:
                with self._others_kept_alive():
                    opened = driver.open()
            except Exception as exc:
                self._fail(driver, exc)
                continue
            if not opened:
                self._end(driver)
                continue
            self._runs[driver.run_id] = driver
            self._by_key[driver.dispatcher.events_key] = driver.run_id
            now = time.monotonic()
            self._due[driver.run_id] = driver.next_due(now)
            self._drop_lost(renew_leases(self._client, self._scripts, self._leases(), now))

    def _leases(self) -> list[Lease]:
        return [d.lease for d in self._runs.values()]

    @contextmanager
    def _others_kept_alive(self) -> Iterator[None]:
        """Renew the leases of the loop's runs from a helper thread while a run loads."""
        if not self._runs:
            yield
            return
        leases = self._leases()
        ttl = min(lease.ttl_s for lease in leases)
        done = threading.Event()
        lost: list[Lease] = []

        def keep() -> None:
            while not done.wait(ttl / 3):
                try:
                    lost.extend(renew_leases(self._client, self._scripts, leases, time.monotonic()))
                except redis.RedisError as exc:
                    log.warning("could not renew leases while a run loads: %s", exc)

        keeper = threading.Thread(target=keep, name="rqdag-lease-keeper", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()
            self._drop_lost(lost)

    # ---- the shared reads --------------------------------------------------------

    def _read(self, now: float) -> None:
        """One XREAD over every run's events stream (and the wake stream)."""
        streams: dict[Any, Any] = {
            d.dispatcher.events_key: d.dispatcher.last_event_id for d in self._runs.values()
        }
        streams[self._wake_key] = self._wake_id
        soonest = min(self._due.values(), default=NEVER)
        block_s = min(soonest - now, BLOCK_S)
        block = None if block_s <= 0.0005 or not self._inbox.empty() else int(block_s * 1000)
        reply: Any = self._client.xread(streams, count=READ_COUNT, block=block)
        for stream, entries in reply or []:
            key = text(stream)
            if key == self._wake_key:
                self._wake_id = entries[-1][0]
                continue
            run_id = self._by_key.get(key)
            if run_id is not None:
                self._runs[run_id].dispatcher.feed(entries)
                self._due[run_id] = 0.0

    def _housekeep(self, now: float) -> None:
        """Renew the due leases and read the cancel requests, each in one pipeline."""
        lost = renew_leases(self._client, self._scripts, self._leases(), now)
        self._drop_lost(lost)
        if now < self._next_cancel_check or not self._runs:
            return
        self._next_cancel_check = now + CANCEL_CHECK_S
        ids = list(self._runs)
        with self._client.pipeline(transaction=False) as pipe:
            for run_id in ids:
                pipe.hget(RunKeys(run_id).meta, "cancel")
            reasons = pipe.execute()
        for run_id, reason in zip(ids, reasons, strict=True):
            if reason:
                self._runs[run_id].dispatcher.note_cancel(text(reason))
                self._due[run_id] = 0.0

    # ---- stepping ----------------------------------------------------------------

    def _step_due(self, now: float) -> None:
        for n, run_id in enumerate([r for r, due in self._due.items() if due <= now]):
            if n and n % ADMIT_BATCH == 0:  # a long round of steps must not let the others' leases run out
                self._renew_between()
            driver = self._runs.get(run_id)
            if driver is None:  # its lease was lost just now
                continue
            try:
                finished = driver.advance(now)
            except LeaseLostError as exc:
                log.warning("%s; another coordinator goes on with the run", exc)
                finished = True
            except Exception as exc:
                self._forget(run_id)
                self._fail(driver, exc)
                continue
            if finished:
                self._forget(run_id)
                self._end(driver)
            else:
                self._due[run_id] = driver.next_due(time.monotonic())

    def _renew_between(self) -> None:
        try:
            self._drop_lost(renew_leases(self._client, self._scripts, self._leases(), time.monotonic()))
        except redis.RedisError as exc:  # tried again at the next read
            self._hooks.redis_failed(exc)

    def _drop_lost(self, lost: list[Lease]) -> None:
        for lease in lost:
            driver = self._runs.get(lease.run_id)
            if driver is None:
                continue
            log.warning(
                "run '%s': lease lost by %s; another coordinator goes on with the run",
                lease.run_id,
                lease.owner,
            )
            self._forget(lease.run_id)
            self._end(driver)

    def _forget(self, run_id: str) -> None:
        driver = self._runs.pop(run_id, None)
        if driver is not None:
            self._by_key.pop(driver.dispatcher.events_key, None)
        self._due.pop(run_id, None)

    def _end(self, driver: RunDriver) -> None:
        driver.close()
        self._hooks.ended(driver)

    def _fail(self, driver: RunDriver, exc: Exception) -> None:
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
        while not self._inbox.empty():
            self._end(self._inbox.get_nowait())

    def count(self) -> int:
        """Runs this loop holds or was handed (approximate while it admits)."""
        return len(self._runs) + self._inbox.qsize()
