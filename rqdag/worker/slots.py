"""The concurrent worker: one RQ worker process running up to N tasks at once, one per slot.

A slot is a thread that performs one job through RQ's own path (its
StartedJobRegistry, its executions, its job heartbeats: ``rq info`` shows every
running job) and rqdag's job function (start, call, finish: the token, the
heartbeat, the result size limit, the fork guard hold per slot). A plain
function runs in its slot's thread; an ``async def`` task is awaited on the
process's one event loop (:mod:`rqdag.shared.aio`), cancelled at its timeout.
A plain task past its timeout is failed and frees its slot at once, with
``ctx.cancelled`` set.

The main thread only dequeues: it waits for a free slot, then takes as many
jobs as slots are free in one batch (:mod:`.intake`), and hands them out one by
one, with no Redis work in between. SIGTERM stops the dequeueing; every slot running then gets the grace
period, and what is still running after it is handed back (see
:meth:`~rqdag.worker.rq_classes.RqdagWorkerMixin.request_stop`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any

import redis
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

from rqdag.shared import metrics
from rqdag.worker.intake import Taken, give_back, take_batch
from rqdag.worker.rq_classes import SimpleTaskWorker
from rqdag.worker.rq_finish import awaiting_success
from rqdag.worker.slot_threads import SlotThreads

log = logging.getLogger("rqdag.worker")

SLOT_WAIT_S = 0.5  # how often a main thread waiting for a free slot looks up (signals, maintenance)
SUSPENSION_CHECK_S = 0.5  # ``rq suspend`` stops a concurrent worker's dequeueing within this long


class ConcurrentTaskWorker(SimpleTaskWorker):
    """rqdag's concurrent worker: ``rqdag_settings.concurrency`` jobs at once in one process."""

    _pool: SlotThreads | None = None
    _free: threading.Semaphore | None = None
    _lock: threading.Lock
    _in_flight = 0
    _suspension_checked_at = float("-inf")
    _waiting = False  # the main thread is blocked waiting (a slot, a job): a stop may interrupt it
    _taken: deque[Taken]  # jobs of the last batch not handed to a slot yet
    _prepared: dict[str, Execution]  # job id -> the execution its batch recorded
    _started: set[str]  # ids of jobs their batch started in RQ's view (status, registry)

    @property
    def slots(self) -> int:
        """How many jobs this worker runs at once."""
        return self.rqdag_settings.concurrency if self.rqdag_settings is not None else 1

    def _slots(self) -> tuple[SlotThreads, threading.Semaphore]:
        if self._pool is None or self._free is None:
            self._pool = SlotThreads(self.slots, "rqdag-slot")
            self._free = threading.Semaphore(self.slots)
            self._lock = threading.Lock()
            self._taken, self._prepared, self._started = deque(), {}, set()
        return self._pool, self._free

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Wait for a free slot, then for a job; in burst mode, empty queues end the loop only
        once no slot runs a job (a running one may still enqueue more)."""
        _, free = self._slots()
        self._wait(free)
        batch = self._next_of_batch()
        if batch is not None:
            return batch
        while True:
            self._waiting = True
            try:
                found = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except BaseException:
                free.release()
                raise
            finally:
                self._waiting = False
            if found is not None or timeout is not None or self._in_flight == 0:
                if found is None:
                    free.release()
                return found
            self._wait_for_one()

    def _next_of_batch(self) -> tuple[Job, Queue] | None:
        """A job of the current batch, or of a new one taken for every free slot (None: none waits).

        Only a worker on one queue takes batches: RQ moves a job into the
        intermediate list (and out of it at the start) only then.
        """
        if not self._taken and len(self._ordered_queues) == 1:
            try:
                self._taken.extend(take_batch(self, self._ordered_queues[0], self.slots - self._in_flight))
            except redis.ResponseError as exc:
                self._refused(exc)  # a full Redis: RQ's own dequeue below waits it out
        if not self._taken:
            return None
        taken = self._taken.popleft()
        if taken.execution is not None:
            self._prepared[taken.job.id] = taken.execution
            with self._lock:
                self._started.add(taken.job.id)
        return taken.job, taken.queue

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ's bookkeeping before a job runs, unless its batch did it already."""
        if job.id not in self._started:
            super().prepare_job_execution(job, remove_from_intermediate_queue)
            return
        with self._lock:
            self._started.discard(job.id)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's check for ``rq suspend`` before a dequeue (a round trip), at most every
        SUSPENSION_CHECK_S, and skipped while a batch taken before it is handed out."""
        self._slots()
        checked = time.monotonic()
        if self._taken or checked - self._suspension_checked_at < SUSPENSION_CHECK_S:
            return
        self._suspension_checked_at = checked
        super().check_for_suspension(burst)

    def _wait(self, free: threading.Semaphore) -> None:
        self._waiting = True
        try:
            while not free.acquire(timeout=SLOT_WAIT_S):
                self.heartbeat()
        finally:
            self._waiting = False

    def _wait_for_one(self) -> None:
        """Burst mode, queues empty, slots still busy: wait until one finishes or a job comes."""
        seen = self._in_flight
        self._waiting = True
        try:
            while self._in_flight == seen and self._in_flight:
                threading.Event().wait(0.05)
        finally:
            self._waiting = False

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Hand the job to a free slot (taken by the dequeue) and return to dequeueing."""
        pool, _ = self._slots()
        execution = self._prepared.pop(job.id, None)
        if execution is None:
            execution = self.prepare_execution(job)  # RQ's execution record, and the worker's busy state
        with self._lock:
            self._in_flight += 1
        pool.submit(self._perform_in_slot, job, queue, execution)

    def _perform_in_slot(self, job: Job, queue: Queue, execution: Any) -> None:
        _, free = self._slots()
        metrics.slot_busy(1)
        try:
            with awaiting_success(self, job, queue, execution):
                self.perform_job(job, queue, execution)
        except redis.ResponseError as exc:
            self._refused(exc)
        except Exception:  # a slot must outlive any one job
            log.exception("worker %s: job %s: slot failed", self.name, job.id)
        finally:
            metrics.slot_busy(-1)
            with self._lock:
                self._in_flight -= 1
                idle = self._in_flight == 0
            free.release()
            if idle and not self._stop_requested:
                try:
                    self.set_state(WorkerStatus.IDLE)
                except redis.RedisError as exc:
                    log.debug("worker %s: state not recorded: %s", self.name, exc)

    def _shutdown(self) -> None:
        """RQ's warm stop: no new job; the slots finish (or are handed back after the grace)."""
        self._stop_requested = True
        self.set_shutdown_requested_date()  # type: ignore[no-untyped-call]
        if self._waiting:
            raise StopRequested()

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """A second signal: stop at once; the slots' attempts are noticed by their heartbeats stopping.

        RQ's cold stop raises SystemExit in the main thread, which would then wait
        for the slot threads at exit: this process leaves at once instead.
        """
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            log.warning("worker %s: cold shutdown with %d task(s) running", self.name, self._in_flight)
            os._exit(0)

    def _give_back(self) -> None:
        taken = list(self._taken)
        self._taken.clear()
        try:
            give_back(self, taken)
        except redis.RedisError as exc:  # left in the intermediate list, where the watchdog finds them
            log.warning("worker %s: %d taken job(s) not put back: %s", self.name, len(taken), exc)

    def teardown(self) -> None:
        """Wait for every slot to finish (the grace timer bounds it), then unregister."""
        if self._pool is not None:
            self._give_back()
            self._pool.shutdown()
        super().teardown()  # type: ignore[no-untyped-call]
