"""DriverLoop: one thread steps many runs, told by its inbox which of them have news.

A coordinator service runs a few loops instead of a thread per run. A loop holds
open :class:`RunDriver` objects (each under its own lease, renewed by the
service's :class:`LeaseKeeper` thread) and, in turn: admits the runs handed to
it (load, first dispatch); blocks on its inbox (:mod:`.loop_inbox`: the events
keys of its runs with news), the submissions stream (a new run is claimed and
opened at once) and the coordinator's wake stream (a run its scan found is
admitted at once); reads the events streams of the runs its inbox named (a loop
of DIRECT_READ_RUNS runs or fewer names them all in its blocking read instead:
one round trip a hop); and steps each run that heard something or whose timer
is due, the watchdog checks of many runs read together (:mod:`.loop_checks`),
the dispatch calls of the round sent together (:mod:`.loop_outbox`).
A cancel request comes as an event; the cancel fields are also read every
CANCEL_POLL_S, for one written without its event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

import redis

from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.lease import Lease, LeaseKeeper
from rqdag.coordinator.loop_checks import check_runs
from rqdag.coordinator.loop_endings import LoopEndingsMixin
from rqdag.coordinator.loop_hooks import LoopHooks
from rqdag.coordinator.loop_inbox import LoopInbox
from rqdag.coordinator.loop_outbox import DispatchOutbox
from rqdag.coordinator.loop_streams import RunStreams
from rqdag.coordinator.loop_timers import DueTimes, block_ms
from rqdag.coordinator.server_clock import STALL_S, ServerClock
from rqdag.coordinator.wakeup import SubmissionWatch
from rqdag.shared.connect import thread_client
from rqdag.shared.store.keys import SUBMISSIONS, coordinator_wake
from rqdag.shared.store.records import text
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts

log = logging.getLogger("rqdag.coordinator")

BLOCK_S = 0.5
READ_COUNT = 1_000  # entries per stream and read (inbox, wake, submissions)
CANCEL_POLL_S = 10.0
LOOP_CONNECTIONS = 2  # of the loop's own client: its commands are sent one at a time
DIRECT_READ_RUNS = 100  # a loop of this many runs or fewer names their streams in its blocking read
ADMIT_BATCH = 50  # runs opened between two reads: the runs already open are stepped meanwhile


class DriverLoop(LoopEndingsMixin):
    """One thread driving many runs of one coordinator (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        owner: str,
        hooks: LoopHooks,
        stop: threading.Event,
        keeper: LeaseKeeper,
        *,
        index: int = 0,
    ) -> None:
        """``index``: the loop's number in its service (it names the loop's inbox)."""
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
        self.inbox = LoopInbox(self.client, owner, index)
        self._submissions: SubmissionWatch | None = None  # see follow_submissions
        self._handed: queue.SimpleQueue[RunDriver] = queue.SimpleQueue()
        self._lost: queue.SimpleQueue[Lease] = queue.SimpleQueue()
        self._runs: dict[str, RunDriver] = {}
        self._due = DueTimes()
        self._streams = RunStreams(self.client)
        self._outbox = DispatchOutbox(self.client, self.scripts.dispatch_jobs)
        self._next_cancel_poll = time.monotonic() + CANCEL_POLL_S
        self.thread = threading.Thread(target=self._serve, name=f"rqdag-loop-{id(self):x}", daemon=True)

    def follow_submissions(self, last: bytes) -> None:
        """Read the submissions stream from the entry ``last`` on (before the thread starts)."""
        self._submissions = SubmissionWatch(last)

    def hand(self, driver: RunDriver) -> None:
        """Give the loop a run to drive (from the service's thread)."""
        self._handed.put(driver)
        self._waker.wake_coordinator(self._owner, driver.run_id)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._housekeep(time.monotonic())
                    self._admit()
                    self._read(time.monotonic())
                except redis.RedisError as exc:  # a shared read: each run finds out in its own step
                    self.clock.forget()
                    self._hooks.redis_failed(exc)
                    self._stop.wait(BLOCK_S)
                self._step_due(time.monotonic())
        finally:
            self._leave_all()

    def _admit(self) -> None:
        """Open up to ADMIT_BATCH runs handed over (their lease kept from the moment it is taken)."""
        for _ in range(ADMIT_BATCH):
            try:
                driver = self._handed.get_nowait()
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
            driver.dispatcher.outbox = self._outbox  # its later steps' dispatches go out per round
            self._streams.add(driver)
            self._due.set(driver.run_id, driver.next_due(time.monotonic()))

    def _read(self, now: float) -> None:
        """Block on the inbox, wake and submissions streams (and, for a loop of few runs, their
        streams too: one round trip a hop); then read the runs with news."""
        streams: dict[Any, Any] = {self.inbox.key: self.inbox.last, self._wake_key: self._wake_id}
        if self._submissions is not None:
            streams[SUBMISSIONS] = self._submissions.last
        direct = len(self._streams) <= DIRECT_READ_RUNS
        if direct:
            streams.update(self._streams.positions())
        block_s = min(self._due.soonest() - now, BLOCK_S)
        idle = block_s > 0.0005 and self._handed.empty() and not self._streams.more
        block = block_ms(block_s) if idle else None
        reply: Any = self.client.xread(streams, count=READ_COUNT, block=block)
        took = time.monotonic() - now
        if block is not None and took > block / 1000 + STALL_S:  # Redis was away: no worker is to blame
            for driver in self._runs.values():
                driver.dispatcher.note_call(took, block / 1000)
        news, self._streams.more = self._streams.more, set()
        heard: list[str] = []
        cancelled: list[str] = []
        for stream, entries in reply or []:
            news |= self._take(text(stream), entries, heard, cancelled)
        if not direct:
            keys = self._streams.all() if self.inbox.sweep_due(now) else news
            more_heard, more_cancelled = self._streams.read(keys)
            heard += more_heard
            cancelled += more_cancelled
        for run_id in heard:
            self._due.now(run_id)
        if cancelled:
            self._read_cancels(cancelled)

    def _take(
        self,
        key: str,
        entries: list[tuple[bytes, dict[bytes, bytes]]],
        heard: list[str],
        cancelled: list[str],
    ) -> set[str]:
        """What the blocking read brought on stream ``key``: the events keys its inbox named."""
        if key == self.inbox.key:
            return self.inbox.take(entries)
        if key == self._wake_key:
            self._wake_id = entries[-1][0]
        elif key == SUBMISSIONS and self._submissions is not None:
            self._claim(self._submissions.take(entries))
        else:
            self._streams.take(key, entries, heard, cancelled)
        return set()

    def _claim(self, runs: Iterable[str]) -> None:
        """Take the runs just submitted that the service lets this loop have (opened next)."""
        claim = self._hooks.claim
        if claim is None:
            return
        for run_id in runs:
            driver = claim(run_id, self)
            if driver is not None:
                self._handed.put(driver)

    def _housekeep(self, now: float) -> None:
        """Keep the inbox alive; let go of the runs whose lease was lost; read every cancel
        field now and then."""
        self.inbox.keep(now)
        while not self._lost.empty():
            self._drop_lost(self._lost.get_nowait())
        if now >= self._next_cancel_poll:
            self._next_cancel_poll = now + CANCEL_POLL_S
            self._read_cancels(list(self._runs))

    def _read_cancels(self, ids: Iterable[str]) -> None:
        """Read the cancel field of the runs ``ids`` in one pipeline; note the requests."""
        for run_id, reason in self._store.read_cancel_requests(list(ids)).items():
            driver = self._runs.get(run_id)
            if driver is not None:
                driver.dispatcher.note_cancel(reason)
                self._due.now(run_id)

    def _step_due(self, now: float) -> None:
        """Step the runs due; those due for their watchdog's check alone are checked together."""
        due = [run_id for run_id in self._due.pop_due(now) if run_id in self._runs]
        checked = [self._runs[r] for r in due if self._runs[r].check_only(now)]
        ids = {driver.run_id for driver in checked}
        stepped = [run_id for run_id in due if run_id not in ids]
        for run_id, found in check_runs(self.client, checked).items():
            if isinstance(found, Exception):
                self._step_failed(run_id, found)
            elif found:
                stepped.append(run_id)
            else:
                self._due.set(run_id, self._runs[run_id].next_due(time.monotonic()))
        for run_id in stepped:
            driver = self._runs.get(run_id)
            if driver is None:  # its lease was lost just now
                continue
            try:
                finished = driver.advance(now)
            except Exception as exc:
                self._step_failed(run_id, exc)
                continue
            if finished:
                if self._outbox.holds(run_id):
                    self._flush()
                    if run_id not in self._runs:  # its call failed: it left the loop already
                        continue
                self._forget(run_id)
                self._end(driver)
            else:
                self._due.set(run_id, driver.next_due(time.monotonic()))
        self._flush()

    def _flush(self) -> None:
        """Send the dispatch calls the runs' steps held; a run whose call failed leaves the loop."""
        for run_id, exc in self._outbox.flush().items():
            if run_id in self._runs:
                self._step_failed(run_id, exc)

    def count(self) -> int:
        """Runs this loop holds or was handed (approximate while it admits)."""
        return len(self._runs) + self._handed.qsize()
