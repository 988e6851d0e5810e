"""RQDispatcher's reading of the run's event stream: blocking reads, and the events made completions.

Workers announce what became of an attempt on the run's event stream
(``started``, ``finished``, ``retry``, ``handback``, ``refused``); an operator's
resolution comes the same way. A small result travels in its event; a larger
one is read from the results hash (or the dispatch entry, for a retry) in one
pipelined round trip per batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from rqdag.coordinator.dispatch import Completion, CompletionKind
from rqdag.coordinator.lease import Lease
from rqdag.coordinator.routing import HELD_RECHECK_S, Router
from rqdag.coordinator.watchdog import Watchdog
from rqdag.errors import DecodeError
from rqdag.shared.model.codec import decode_result
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import EventKind
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import parse_dispatch_entry, text

log = logging.getLogger("rqdag.coordinator")

READ_COUNT = 10_000
BLOCK_SLICE_S = 0.5
LINGER_S = 0.01
LINGER_MIN_IN_FLIGHT = 64
LINGER_BATCH = 32

Event = tuple[bytes, dict[bytes, bytes]]


@dataclass
class Arrivals:
    """The events of one collect, by what becomes of them."""

    finished: list[str] = field(default_factory=list)  # final results, to read from the results hash
    retried: list[str] = field(default_factory=list)  # failures to retry: the result is in the dispatch entry
    resolved: list[str] = field(default_factory=list)  # an operator's results
    handed: list[Completion] = field(default_factory=list)  # attempts handed back by their worker
    inline: list[Completion] = field(default_factory=list)  # results that came in their event
    tokens: dict[str, str] = field(default_factory=dict)  # the attempt of each finished or retried task


class RQEventsMixin:
    """:class:`~rqdag.coordinator.rq_dispatcher.RQDispatcher`'s reads of the run's events."""

    _client: redis.Redis
    _lease: Lease
    _keys: RunKeys
    _router: Router
    _watchdog: Watchdog
    _last_id: bytes
    _pending: list[Event]
    _from_workers: set[str]
    _woken: bool
    _next_cancel_check: float
    multiplexed: bool  # a multiplexing loop reads the stream and the cancel field for many runs
    cancel_reason: str | None
    problems: list[str]

    def wait(self, timeout: float, *, in_flight: int = 0) -> None:
        """Block on the event stream until something arrives, wake(), or timeout.

        With many attempts in flight the workers have queued work to go on with,
        so a completion or two that arrive alone wait LINGER_S for the next ones:
        a batch costs the coordinator one read and one step instead of one each.
        """
        if self._router.held:  # a capable worker may register any moment
            timeout = min(timeout, HELD_RECHECK_S)
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._pending and not self._woken:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._read(block_s=min(remaining, BLOCK_SLICE_S))
        if not self._woken and in_flight >= LINGER_MIN_IN_FLIGHT and len(self._pending) < LINGER_BATCH:
            time.sleep(LINGER_S)
            self._read(block_s=None)
        self._woken = False

    def wake(self) -> None:
        """Make wait() return within one blocking slice (safe from a signal handler)."""
        self._woken = True

    def _sort(self, events: list[Event]) -> Arrivals:
        """What each event says: noted for the watchdog, sorted for :meth:`collect`."""
        out = Arrivals()
        for _, fields in events:
            kind = text(fields.get(b"kind", b""))
            task = text(fields.get(b"task", b""))
            if kind == EventKind.RESOLVED:
                out.resolved.append(task)
            elif kind == EventKind.STARTED:
                self._watchdog.started(task, text(fields.get(b"token", b"")))
            elif kind == EventKind.HANDBACK:
                self._watchdog.forget(task)
                worker = text(fields.get(b"worker", b"?"))
                result = TaskResult.failure(f"worker {worker} shut down and handed the task back")
                token = text(fields.get(b"token", b""))
                out.handed.append(Completion(task, token, result, CompletionKind.HANDED_BACK))
            elif kind in (EventKind.FINISHED, EventKind.RETRY):
                self._watchdog.forget(task)
                token = text(fields.get(b"token", b""))
                raw = fields.get(b"result")
                if raw is not None:  # a small result travels in its event: nothing to read
                    what = "results" if kind == EventKind.FINISHED else "dispatch last_result"
                    out.inline.append(
                        self._completion(task, token, raw, f"{what} of '{task}' (in its event)", kind)
                    )
                    continue
                (out.finished if kind == EventKind.FINISHED else out.retried).append(task)
                out.tokens[task] = token
            elif kind == EventKind.REFUSED:
                log.warning(
                    "run '%s': late result of task '%s' (token %s) refused",
                    self._lease.run_id,
                    task,
                    text(fields.get(b"token", b"")),
                )
        return out

    def _completion(self, task: str, token: str, raw: bytes | str, what: str, kind: str) -> Completion:
        """The completion of a ``finished`` or ``retry`` event whose result is ``raw``.

        A failure the worker wrote as final (``finished``) is final: only the worker saw
        its exception, and whether the task's ``Retry(on=...)`` lists it.
        """
        result = self._decode(raw, f"run '{self._lease.run_id}': {what}")
        if kind == EventKind.FINISHED:  # written by its worker: record() has nothing to write for it
            self._from_workers.add(task)
        return Completion(task, token, result, retryable=kind == EventKind.RETRY)

    def _read(self, block_s: float | None) -> None:
        block = None if block_s is None else max(int(block_s * 1000), 1)
        started = time.monotonic()
        reply: Any = self._client.xread({self._keys.events: self._last_id}, count=READ_COUNT, block=block)
        self._watchdog.note_call(time.monotonic() - started, block_s or 0.0)  # slow: Redis was away
        for _stream, entries in reply or []:
            for event_id, fields in entries:
                self._last_id = event_id
                self._pending.append((event_id, fields))

    def _news(self, token: str) -> set[str]:
        """The kinds of the events about attempt ``token`` read but not applied yet (read now)."""
        self._read(block_s=None)
        wanted = token.encode()
        return {text(f.get(b"kind", b"")) for _, f in self._pending if f.get(b"token") == wanted}

    def _check_cancel(self) -> None:
        now = time.monotonic()
        if self.multiplexed or now < self._next_cancel_check:
            return
        self._next_cancel_check = now + 0.5
        if self.cancel_reason is None:
            reason = self._client.hget(self._keys.meta, "cancel")
            if reason:
                self.cancel_reason = text(reason)

    def _load_completions(self, arrived: Arrivals) -> list[Completion]:
        """The completions whose results are stored, not in their events (one pipelined read)."""
        finished, retried, resolved = arrived.finished, arrived.retried, arrived.resolved
        tokens = arrived.tokens
        with self._client.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.results, finished or ["\x00"])
            pipe.hmget(self._keys.dispatch, retried or ["\x00"])
            pipe.hmget(self._keys.results, resolved or ["\x00"])
            final_raw, retry_raw, resolved_raw = pipe.execute()
        out: list[Completion] = []
        run = self._lease.run_id
        for name, raw in zip(resolved, resolved_raw, strict=False):
            if raw is not None:
                result = self._decode(raw, f"run '{run}': results field '{name}'")
                out.append(Completion(name, "", result, CompletionKind.RESOLVED))
        for name, raw in zip(finished, final_raw, strict=False):
            if raw is not None:
                out.append(
                    self._completion(name, tokens[name], raw, f"results field '{name}'", EventKind.FINISHED)
                )
        for name, raw in zip(retried, retry_raw, strict=False):
            if raw is None:
                continue
            try:
                entry = parse_dispatch_entry(run, name, raw)
            except DecodeError as exc:
                self.problems.append(str(exc))
                log.error("%s", exc)
                continue
            if entry.token != tokens[name] or entry.last_result is None:
                continue
            result = self._decode(entry.last_result, f"run '{run}': dispatch '{name}' last_result")
            out.append(Completion(name, entry.token, result))
        return out

    def _decode(self, raw: bytes | str, what: str) -> TaskResult:
        try:
            return decode_result(raw, what=what)
        except DecodeError as exc:
            self.problems.append(str(exc))
            log.error("%s", exc)
            return TaskResult.failure(f"stored result is unreadable: {exc}")
