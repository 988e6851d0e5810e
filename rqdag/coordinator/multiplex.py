"""DriverLoop: one thread steps many runs, reading all their event streams in one XREAD.

A coordinator service runs a few loops instead of a thread per run. A loop
holds open :class:`RunDriver` objects (each under its own lease, renewed by the
service's :class:`LeaseKeeper` thread however long a round of steps takes) and,
in turn: admits the runs handed to it (load, first dispatch), reads every run's
events stream at once (``XREAD BLOCK ... STREAMS e1 e2 ... id1 id2 ...``, plus
the submissions stream, so a new run is claimed and opened at once, and the
coordinator's wake stream, so a run its scan found is admitted at once), and steps each
run that heard something or whose timer (retry, time-out, sleep, deadline,
watchdog check) is due. A cancel request is heard as an event of the run's
stream; the runs' cancel fields are also read every CANCEL_POLL_S, for one
written without its event. On Redis Cluster the streams of one read must share
a hash slot: a loop would group its runs by slot and read each group (not done:
rqdag's keys do not share hash tags today).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.lease import Lease, LeaseKeeper
from rqdag.coordinator.server_clock import STALL_S, ServerClock
from rqdag.coordinator.wakeup import SubmissionWatch
from rqdag.errors import LeaseLostError
from rqdag.shared.connect import thread_client
from rqdag.shared.model.vocabulary import EventKind
from rqdag.shared.store.keys import SUBMISSIONS, RunKeys, coordinator_wake
from rqdag.shared.store.records import text
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts

log = logging.getLogger("rqdag.coordinator")

BLOCK_S = 0.5
READ_COUNT = 1_000  # per stream and read
CANCEL_POLL_S = 10.0
CANCEL_EVENT = EventKind.CANCEL.value.encode()
STARTED_EVENT = EventKind.STARTED.value.encode()
LOOP_CONNECTIONS = 2  # of the loop's own client: its commands are sent one at a time
ADMIT_BATCH = 50  # runs opened between two reads: the runs already open are stepped meanwhile
NEVER = float("inf")


@dataclass
class LoopHooks:
    """What a loop tells its service: a run ended here (its status, or None: it left it)
    or failed (the exception), and that a shared read failed or went through."""

    ended: Callable[[RunDriver], None]
    failed: Callable[[str, Exception], None]
    redis_failed: Callable[[redis.RedisError], None]
    # a run was submitted: a driver of it for this loop, or None (driven here already, or too many)
    claim: Callable[[str, DriverLoop], RunDriver | None] | None = None


class DriverLoop:
    """One thread driving many runs of one coordinator (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        owner: str,
        hooks: LoopHooks,
        stop: threading.Event,
        keeper: LeaseKeeper,
    ) -> None:
        # Its runs' drivers send on a client of this thread's own (see thread_client);
        # hand() runs in the service's thread, so it wakes the loop through ``client``.
        self.client = thread_client(client, connections=LOOP_CONNECTIONS)
        self.scripts = Scripts.register(self.client)
        self.clock = ServerClock(self.client)  # Redis's clock for all its runs' watchdogs
        self._hooks = hooks
        self._stop = stop
        self._keeper = keeper
        self._store = RunStore(self.client)
        self._waker = RunStore(client)
        self._owner = owner
        self._wake_key = coordinator_wake(owner)
        self._wake_id = b"0-0"
        self._submissions: SubmissionWatch | None = None  # see follow_submissions
        self._inbox: queue.SimpleQueue[RunDriver] = queue.SimpleQueue()
        self._lost: queue.SimpleQueue[Lease] = queue.SimpleQueue()
        self._runs: dict[str, RunDriver] = {}
        self._due: dict[str, float] = {}
        self._by_key: dict[str, str] = {}  # events stream -> run id
        self._next_cancel_poll = time.monotonic() + CANCEL_POLL_S
        self.thread = threading.Thread(target=self._serve, name=f"rqdag-loop-{id(self):x}", daemon=True)

    def follow_submissions(self, last: bytes) -> None:
        """Read the submissions stream from the entry ``last`` on (before the thread starts)."""
        self._submissions = SubmissionWatch(last)

    def hand(self, driver: RunDriver) -> None:
        """Give the loop a run to drive (from the service's thread)."""
        self._inbox.put(driver)
        self._waker.wake_coordinator(self._owner, driver.run_id)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._admit()
                    self._read(time.monotonic())
                    self._housekeep(time.monotonic())
                except redis.RedisError as exc:  # a shared read: each run finds out in its own step
                    self.clock.forget()
                    self._hooks.redis_failed(exc)
                    self._stop.wait(BLOCK_S)
                self._step_due(time.monotonic())
        finally:
            self._leave_all()

    # ---- admission ---------------------------------------------------------------

    def _admit(self) -> None:
        """Open up to ADMIT_BATCH runs handed over (their lease kept from the moment it is taken)."""
        for _ in range(ADMIT_BATCH):
            try:
                driver = self._inbox.get_nowait()
            except queue.Empty:
                return
            if self._stop.is_set():
                self._end(driver)
                continue
            self._keeper.hold(driver.lease, self._lost)
            try:
                opened = driver.open()
            except Exception as exc:
                self._fail(driver, exc)
                continue
            if not opened:
                self._end(driver)
                continue
            self._runs[driver.run_id] = driver
            self._by_key[driver.dispatcher.events_key] = driver.run_id
            self._due[driver.run_id] = driver.next_due(time.monotonic())

    # ---- the shared reads --------------------------------------------------------

    def _read(self, now: float) -> None:
        """One XREAD over every run's events stream (and the wake and submissions streams)."""
        streams: dict[Any, Any] = {
            d.dispatcher.events_key: d.dispatcher.last_event_id for d in self._runs.values()
        }
        streams[self._wake_key] = self._wake_id
        if self._submissions is not None:
            streams[SUBMISSIONS] = self._submissions.last
        soonest = min(self._due.values(), default=NEVER)
        block_s = min(soonest - now, BLOCK_S)
        block = None if block_s <= 0.0005 or not self._inbox.empty() else int(block_s * 1000)
        reply: Any = self.client.xread(streams, count=READ_COUNT, block=block)
        took = time.monotonic() - now
        if block is not None and took > block / 1000 + STALL_S:  # Redis was away: no worker is to blame
            for driver in self._runs.values():
                driver.dispatcher.note_call(took, block / 1000)
        asked = [self._take(text(stream), entries) for stream, entries in reply or []]
        cancelled = [run_id for run_id in asked if run_id is not None]
        if cancelled:
            self._read_cancels(cancelled)

    def _take(self, key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> str | None:
        """What the read brought on stream ``key``; the run's id when a cancel was asked of it."""
        if key == self._wake_key:
            self._wake_id = entries[-1][0]
            return None
        if key == SUBMISSIONS and self._submissions is not None:
            self._claim(self._submissions.take(entries))
            return None
        run_id = self._by_key.get(key)
        if run_id is None:
            return None
        self._runs[run_id].dispatcher.feed(entries)
        # A worker starting a task asks nothing of the run: its next step (the
        # task's end, or a timer) reads the news. Any other event steps it now.
        if any(fields.get(b"kind") != STARTED_EVENT for _, fields in entries):
            self._due[run_id] = 0.0
        return run_id if any(fields.get(b"kind") == CANCEL_EVENT for _, fields in entries) else None

    def _claim(self, runs: Iterable[str]) -> None:
        """Take the runs just submitted that the service lets this loop have (opened next)."""
        claim = self._hooks.claim
        if claim is None:
            return
        for run_id in runs:
            driver = claim(run_id, self)
            if driver is not None:
                self._inbox.put(driver)

    def _housekeep(self, now: float) -> None:
        """Let go of the runs whose lease was lost; read every cancel field now and then."""
        while not self._lost.empty():
            self._drop_lost(self._lost.get_nowait())
        if now >= self._next_cancel_poll:
            self._next_cancel_poll = now + CANCEL_POLL_S
            self._read_cancels(list(self._runs))

    def _read_cancels(self, ids: Iterable[str]) -> None:
        """Read the cancel field of the runs ``ids`` in one pipeline; note the requests."""
        ids = list(ids)
        with self.client.pipeline(transaction=False) as pipe:
            for run_id in ids:
                pipe.hget(RunKeys(run_id).meta, "cancel")
            reasons = pipe.execute()
        for run_id, reason in zip(ids, reasons, strict=True):
            driver = self._runs.get(run_id)
            if reason and driver is not None:
                driver.dispatcher.note_cancel(text(reason))
                self._due[run_id] = 0.0

    # ---- stepping ----------------------------------------------------------------

    def _step_due(self, now: float) -> None:
        for run_id in [r for r, due in self._due.items() if due <= now]:
            driver = self._runs.get(run_id)
            if driver is None:  # its lease was lost just now
                continue
            try:
                finished = driver.advance(now)
            except LeaseLostError as exc:
                log.warning("%s; another coordinator goes on with the run", exc)
                finished = True
            except Exception as exc:
                if isinstance(exc, redis.RedisError):
                    self.clock.forget()
                self._forget(run_id)
                self._fail(driver, exc)
                continue
            if finished:
                self._forget(run_id)
                self._end(driver)
            else:
                self._due[run_id] = driver.next_due(time.monotonic())

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
            self._by_key.pop(driver.dispatcher.events_key, None)
        self._due.pop(run_id, None)

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
        while not self._inbox.empty():
            self._end(self._inbox.get_nowait())

    def count(self) -> int:
        """Runs this loop holds or was handed (approximate while it admits)."""
        return len(self._runs) + self._inbox.qsize()
