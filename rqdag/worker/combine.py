"""Group commit: the slots' start and finish steps that meet go out in one round trip.

A slot calling :meth:`Combiner.call` while no round trip of that kind is under
way sends its own call at once (one call: the same round trip as alone). While
one is under way, the calls that arrive wait for it to end, then the first of
them sends all of them in one script run (``start_tasks``, ``finish_jobs``).
Nothing waits for a timer, and no call waits for more than the round trip ahead
of it and its own.

Each call stays fenced by its own attempt token: in a batch a stale token is
refused in its own answer while the others land. An error of the round trip
reaches every call of it, whose callers send again as they would alone
(:mod:`.retrying`); each call is idempotent when sent again (a start by its
claim, a finish by the result it finds written), so one that had landed before
the error answers as it did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import redis

from rqdag.shared.store.scripts import FinishJob, FinishOutcome, RqWorker, Scripts, Start
from rqdag.shared.store.scripts.base import ScriptCall

Call = TypeVar("Call")
Answer = TypeVar("Answer")


class _Pending(Generic[Call, Answer]):
    """One call waiting for its answer (or for its turn to send the batch).

    Woken by releasing a lock held from its creation (a lock costs less than an
    Event, made of a Condition, for each call): each wake is one release, each
    wait one acquire, so a wake that comes first is not lost.
    """

    def __init__(self, call: Call) -> None:
        self.call = call
        self._signal = threading.Lock()
        self._signal.acquire()
        self.lead = False  # woken to send the next batch, not with an answer
        self.answer: Answer | None = None
        self.error: BaseException | None = None

    def wake(self) -> None:
        self._signal.release()

    def wait(self) -> None:
        self._signal.acquire()

    def result(self) -> Answer:
        if self.error is not None:
            raise self.error
        return self.answer  # type: ignore[return-value]


class Combiner(Generic[Call, Answer]):
    """Calls of one kind from many threads, sent together when they meet."""

    def __init__(self, send: Callable[[Sequence[Call]], Sequence[Answer | Exception]]) -> None:
        """``send``: every call of a batch in one round trip, each one's answer or error, in order."""
        self._send = send
        self._lock = threading.Lock()
        self._queue: list[_Pending[Call, Answer]] = []
        self._busy = False
        self.batches = 0  # round trips sent (for tests and the bench)

    def call(self, call: Call) -> Answer:
        """Send ``call`` (alone or with others) and return its answer, or raise its error."""
        pending: _Pending[Call, Answer] = _Pending(call)
        with self._lock:
            self._queue.append(pending)
            lead = not self._busy
            self._busy = True
        if not lead:
            pending.wait()
            if not pending.lead:
                return pending.result()
        self._send_batch()
        return pending.result()

    def _send_batch(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            answers = self._send([p.call for p in batch])
            for pending, answer in zip(batch, answers, strict=True):
                if isinstance(answer, Exception):
                    pending.error = answer
                else:
                    pending.answer = answer
        except BaseException as exc:  # the round trip failed: every call of it sees why
            for pending in batch:
                pending.error = exc
        finally:
            self.batches += 1
            with self._lock:
                after = self._queue[0] if self._queue else None
                self._busy = after is not None
                if after is not None:
                    after.lead = True
            for pending in batch:  # the sender's own too: no one waits on it, a release is harmless
                pending.wake()
            if after is not None:
                after.wake()


class SlotSteps:
    """A concurrent worker's start and finish steps, each kind combined when slots meet.

    The starts that meet are one run of ``start_tasks``, the finishes one run of
    ``finish_jobs`` (each call fenced by its own token, RQ's success bookkeeping of
    each job riding along).
    """

    def __init__(self, scripts: Scripts, connection: redis.Redis, worker: RqWorker) -> None:
        """The combiners of ``scripts.start_tasks`` and ``scripts.finish_jobs`` on ``connection``."""
        self.starts: Combiner[ScriptCall, Start] = Combiner(
            lambda calls: scripts.start_tasks.batch(calls, connection)
        )
        self.finishes: Combiner[FinishJob, FinishOutcome] = Combiner(
            lambda calls: scripts.finish_jobs.batch(calls, worker, connection)
        )
