"""The worker's scripts on one attempt: start, heartbeat, finish, hand back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.typing import EncodableT

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import EVENTS_MAXLEN, ScriptCall, ScriptWrapper, text
from rqdag.shared.store.scripts.outcomes import Beat, FinishOutcome, Start, StartOutcome


class StartTask(ScriptWrapper):
    """``start_task.lua``: claim one attempt and get its inputs in the same round trip."""

    name = "start_task"

    def __call__(
        self,
        keys: RunKeys,
        *,
        task: str,
        token: str,
        worker: str,
        claim: str,
        now: float,
        heartbeat_timeout_s: float | None,
        depends_on: Sequence[str],
        client: redis.Redis | None = None,
    ) -> Start:
        """Mark the attempt running and read the params and dependencies' results, or say why not.

        ``claim`` is unique to this start: the same call sent again (its answer was lost
        in an outage) answers as the first did, instead of finding the attempt taken.
        ``now`` is the worker's clock (kept as ``worker_time``); ``heartbeat_timeout_s``
        is this worker's own heartbeat limit (None: the run's limit applies).
        """
        call = self.request(
            keys,
            task=task,
            token=token,
            worker=worker,
            claim=claim,
            now=now,
            heartbeat_timeout_s=heartbeat_timeout_s,
            depends_on=depends_on,
        )
        return self.parse(self._eval(*call, client))

    @staticmethod
    def request(
        keys: RunKeys,
        *,
        task: str,
        token: str,
        worker: str,
        claim: str,
        now: float,
        heartbeat_timeout_s: float | None,
        depends_on: Sequence[str],
    ) -> ScriptCall:
        """One call's KEYS and ARGV (the parameters of :meth:`__call__`), for :meth:`many`."""
        hb_limit: EncodableT = "" if heartbeat_timeout_s is None else heartbeat_timeout_s
        args: list[EncodableT] = [task, token, worker, now, EVENTS_MAXLEN, hb_limit, claim, *depends_on]
        return [keys.meta, keys.results, keys.dispatch, keys.events], args

    def many(self, calls: Sequence[ScriptCall], client: redis.Redis) -> list[Start | Exception]:
        """Several starts (each fenced by its own token) in one round trip: each one's answer or error."""
        return [r if isinstance(r, Exception) else self.parse(r) for r in self._eval_many(calls, client)]

    def parse(self, reply: Any) -> Start:
        """The typed answer of one call."""
        return _start_answer(self, reply)


def _start_answer(script: ScriptWrapper, reply: Any) -> Start:
    """A start's typed answer (``start_task``'s reply, or one call's of ``start_tasks``)."""
    try:
        outcome = StartOutcome(text(reply[0]))
    except (ValueError, TypeError, IndexError):
        raise script._unexpected(reply) from None
    if outcome is StartOutcome.OK:
        return Start(outcome, reply[1], tuple(reply[2:]))
    if outcome is StartOutcome.CANCELLED:
        return Start(outcome, cancel_reason=text(reply[1]) if len(reply) > 1 and reply[1] else "")
    return Start(outcome)


class StartTasks(ScriptWrapper):
    """``start_tasks.lua``: the starts of a worker's slots that met, in one script run.

    Each call is :meth:`StartTask.request`'s (the same step, fenced by its own token).
    """

    name = "start_tasks"

    def __call__(self, calls: Sequence[ScriptCall], client: redis.Redis | None = None) -> list[Start]:
        """Each call's answer, in order (as :class:`StartTask` answers it alone)."""
        if not calls:
            return []
        keys: list[str] = []
        args: list[EncodableT] = [calls[0][1][2], EVENTS_MAXLEN]  # the worker's name, shared
        for call_keys, call_args in calls:
            task, token, _worker, now, _maxlen, hb_limit, claim, *deps = call_args
            keys += call_keys
            args += [task, token, now, hb_limit, claim, len(deps), *deps]
        reply = self._eval(keys, args, client)
        if not isinstance(reply, list) or len(reply) != len(calls):
            raise self._unexpected(reply)
        return [_start_answer(self, answer) for answer in reply]

    def batch(self, calls: Sequence[ScriptCall], client: redis.Redis) -> list[Start | Exception]:
        """Every call in one script run, for a combiner (an error reaches every call)."""
        return list(self(calls, client))


class FinishTask(ScriptWrapper):
    """``finish_task.lua``: report the outcome of one attempt, fenced by its token."""

    name = "finish_task"

    def __call__(
        self,
        keys: RunKeys,
        *,
        task: str,
        token: str,
        result: bytes,
        status: str,
        final: bool,
        now: float,
        inline: bool,
        client: redis.Redis | None = None,
    ) -> FinishOutcome:
        """Write ``result`` (the TaskResult JSON) if ``final``, else keep it for the retry.

        ``inline`` copies the result into the event too, so the coordinator need not read it.
        Sent again with the same arguments after a lost answer, it answers WRITTEN when the
        first call's write is there (the result, the kept retry, or a retry dispatched after it).
        """
        call = self.request(
            keys, task=task, token=token, result=result, status=status, final=final, now=now, inline=inline
        )
        return self.parse(self._eval(*call, client))

    @staticmethod
    def request(
        keys: RunKeys,
        *,
        task: str,
        token: str,
        result: bytes,
        status: str,
        final: bool,
        now: float,
        inline: bool,
    ) -> ScriptCall:
        """One call's KEYS and ARGV (the parameters of :meth:`__call__`), for :meth:`many`."""
        flags = ("1" if final else "0", now, EVENTS_MAXLEN, "1" if inline else "0")
        args: list[EncodableT] = [task, token, result, status, *flags]
        return [keys.results, keys.dispatch, keys.events], args

    def many(self, calls: Sequence[ScriptCall], client: redis.Redis) -> list[FinishOutcome | Exception]:
        """Several finishes (each fenced by its own token) in one round trip: each one's answer or error."""
        return [r if isinstance(r, Exception) else self.parse(r) for r in self._eval_many(calls, client)]

    def parse(self, reply: Any) -> FinishOutcome:
        """The typed answer of one call."""
        try:
            return FinishOutcome(text(reply))
        except ValueError:
            raise self._unexpected(reply) from None


class Heartbeat(ScriptWrapper):
    """``heartbeat.lua``: prove a running attempt is alive, and learn of a cancel."""

    name = "heartbeat"

    def __call__(
        self, keys: RunKeys, *, task: str, token: str, now: float, client: redis.Redis | None = None
    ) -> Beat:
        """Whether the attempt is still the running one, and the run's cancel reason."""
        return self._beat(self._eval([keys.dispatch, keys.meta], [task, token, now], client))

    def many(
        self, attempts: Sequence[tuple[RunKeys, str, str]], *, now: float, client: redis.Redis
    ) -> list[Beat]:
        """One heartbeat per ``(keys, task, token)``, all in one pipelined round trip, in order."""
        with client.pipeline(transaction=False) as pipe:
            for keys, task, token in attempts:
                self._script([keys.dispatch, keys.meta], [task, token, now], pipe)
            replies = pipe.execute()
        return [self._beat(reply) for reply in replies]

    @staticmethod
    def _beat(reply: Any) -> Beat:
        if text(reply[0]) != "ok":
            return Beat(alive=False)
        return Beat(alive=True, cancel_reason=text(reply[1]) if reply[1] else "")


class HandBack(ScriptWrapper):
    """``hand_back.lua``: a worker shutting down gives a running attempt back."""

    name = "hand_back"

    def __call__(self, keys: RunKeys, *, task: str, token: str, client: redis.Redis | None = None) -> bool:
        """True when handed back; False when the attempt is no longer the running one."""
        return bool(self._eval([keys.dispatch, keys.events], [task, token, EVENTS_MAXLEN], client))
