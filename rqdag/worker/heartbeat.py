"""The heartbeat of a running attempt: proof of life, and news of a cancel.

It runs from the start step's answer until the finish step's: also while a
finished result waits for Redis to come back, so the coordinator sees the
attempt alive as soon as Redis is. On a concurrent worker the heartbeats of all
its slots go together: a :class:`HeartbeatRound` sends them in one pipelined
round trip per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

import redis

from rqdag.shared.episodes import Episode
from rqdag.shared.redis_memory import is_out_of_memory, memory_episode
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts import Scripts
from rqdag.shared.store.scripts.outcomes import Beat
from rqdag.worker.ticker import Ticker

log = logging.getLogger("rqdag.worker")


class Heartbeat:
    """Runs the ``heartbeat`` script every ``interval`` seconds on the worker's ticker.

    It sets ``cancelled`` when the attempt is no longer the current one (the
    coordinator gave up on it) or when the run has a cancel reason. Use it as a
    context manager around the task call and the finish step; call
    :meth:`finishing` before the finish step, whose own answer then tells
    whether the attempt was still current.
    """

    def __init__(
        self,
        scripts: Scripts,
        keys: RunKeys,
        task: str,
        token: str,
        interval: float,
        cancelled: threading.Event,
        ticker: Ticker,
        round_: HeartbeatRound | None = None,
    ) -> None:
        self.scripts = scripts
        self.keys = keys
        self.task = task
        self.token = token
        self.interval = interval
        self.cancelled = cancelled
        attempt = token.partition("-")[0]
        # every line it logs names its attempt (the JSON log format shows them)
        self._extra = {
            "run_id": keys.run_id,
            "task": task,
            "attempt": int(attempt) if attempt.isdigit() else None,
        }
        self._ticker = ticker
        self._round = round_
        self._handle: int | None = None
        self._memory = memory_episode(log, f"run {keys.run_id!r}, task {task!r}: heartbeat: ")
        self._finishing = False
        where = f"run {keys.run_id!r}, task {task!r}"
        adapter: Any = logging.LoggerAdapter(log, self._extra)  # its lines name the attempt
        self._failing = Episode(
            adapter, f"{where}: heartbeat failed (trying again)", f"{where}: heartbeat sent again"
        )

    def __enter__(self) -> Heartbeat:
        if self._round is not None:
            self._round.join(self)
        else:
            self._handle = self._ticker.every(self.interval, self._tick)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._round is not None:
            self._round.leave(self)
        if self._handle is not None:
            self._ticker.cancel(self._handle)

    def finishing(self) -> None:
        """The task has its result: from now on a heartbeat that finds the attempt no longer
        running stops quietly (the finish step may have just written it)."""
        self._finishing = True

    def _tick(self) -> None:
        try:
            alive = self.beat()
        except redis.RedisError as exc:
            self.failed(exc)
            return
        if not alive and self._handle is not None:
            self._ticker.cancel(self._handle)

    def failed(self, exc: redis.RedisError) -> None:
        """A heartbeat Redis did not take: said once per episode (a full Redis, or an outage),
        tried again next time."""
        if is_out_of_memory(exc):
            self._memory.seen(exc, kind="OOM")
        else:
            self._failing.seen(exc, kind=type(exc).__name__)

    def beat(self) -> bool:
        """Send one heartbeat; False when the attempt is no longer current."""
        return self.answered(
            self.scripts.heartbeat(self.keys, task=self.task, token=self.token, now=time.time())
        )

    def answered(self, beat: Beat) -> bool:
        """Act on a heartbeat's answer (stop the task, note a cancel); False when no longer current."""
        self._memory.over()
        self._failing.over()
        if not beat.alive and self._finishing:
            return False
        if not beat.alive:
            log.warning(
                "run %r, task %r: attempt %s is no longer current; telling the task to stop",
                self.keys.run_id,
                self.task,
                self.token,
                extra=self._extra,
            )
            self.cancelled.set()
            return False
        reason = beat.cancel_reason
        if reason and not self.cancelled.is_set():
            log.info(
                "run %r, task %r: the run is being cancelled (%s)",
                self.keys.run_id,
                self.task,
                reason,
                extra=self._extra,
            )
            self.cancelled.set()
        return True


class HeartbeatRound:
    """The heartbeats of every slot of a concurrent worker, in one round trip every ``interval``."""

    def __init__(self, scripts: Scripts, connection: redis.Redis, interval: float, ticker: Ticker) -> None:
        self.scripts = scripts
        self.connection = connection
        self.interval = interval
        self._ticker = ticker
        self._lock = threading.Lock()
        self._members: dict[int, Heartbeat] = {}
        self._handle: int | None = None

    def join(self, heartbeat: Heartbeat) -> None:
        """Beat for ``heartbeat``'s attempt from the next round on."""
        with self._lock:
            self._members[id(heartbeat)] = heartbeat
            if self._handle is None:
                self._handle = self._ticker.every(self.interval, self._tick)

    def leave(self, heartbeat: Heartbeat) -> None:
        """No more beats for ``heartbeat``'s attempt (a round under way may send one more)."""
        with self._lock:
            self._members.pop(id(heartbeat), None)
            if not self._members and self._handle is not None:
                self._ticker.cancel(self._handle)
                self._handle = None

    def _tick(self) -> None:
        with self._lock:
            members = list(self._members.values())
        if not members:
            return
        attempts = [(m.keys, m.task, m.token) for m in members]
        try:
            beats = self.scripts.heartbeat.many(attempts, now=time.time(), client=self.connection)
        except redis.RedisError as exc:
            for member in members:
                member.failed(exc)
            return
        for member, beat in zip(members, beats, strict=True):
            if not member.answered(beat):
                self.leave(member)
