"""What a coordinator reads to take a run over: statuses, not the data of every success.

The read is a series of bounded commands from the client, never one script: a
script over the whole results hash would block every client of Redis for as
long as the run is large (seconds at 100,000 tasks). Each chunk is one HSCAN
of a few hundred fields (fewer when results are large), so another client waits
at most one chunk for its turn.

Consistency. The chunks are read while workers go on finishing tasks, so the
read is not one instant. It is in this order, and relies on what follows:

1. the id of the newest event (``E0``);
2. the dispatch hash, in chunks;
3. the results hash, in chunks;
4. a check that the events stream still holds ``E0`` (it is trimmed from its
   head): otherwise events after ``E0`` may be gone, and the read starts over.

- Only the lease holder creates dispatch entries (the dispatch transaction is
  fenced by the lease), and this coordinator holds the lease before it reads:
  during the read, entries only change state or disappear. Workers change them
  (start, heartbeat, retry, hand-back) and their finish step deletes one while it
  writes the result and appends the event, in one atomic step.
- Results are never deleted while a run is driven, so every result that exists
  when step 3 starts is returned by it (HSCAN returns every field present for the
  whole scan; a field may come twice, the later copy being the newer).
- Hence every task that was in flight when step 2 began is found in step 2, or its
  entry was deleted first, and then its result was written before step 3 began and
  is found there. A task found in neither was not in flight at any point of the
  read and has no result: nobody else may dispatch it, so it is not started.
- Whatever changed after ``E0`` has its event after ``E0``, and the dispatcher
  follows the stream from ``E0``: a result written between chunks is found in
  step 3 or arrives as its ``finished`` event, never lost. When both, the task is
  done from step 3, its entry is not adopted (:func:`restore_in_flight` skips
  entries of tasks with a result) and the event's completion is stale.
- A task whose entry was read as queued or running and that finished before its
  results chunk was read is done, not adopted: it is not dispatched again. Should
  a succeeded task ever be dispatched again, the worker's start step refuses to
  run a task that already has a ``success`` result: that is the backstop.

The opening read (:func:`read_opening`) comes first: the meta, the definition,
``E0`` and the first chunk of each hash in one MULTI/EXEC, every command of it
bounded. When both chunks hold the whole hash (a small run: the common case),
that is the progress, read at one instant, and nothing more is read; otherwise
the chunked read above follows.

A ``BUSY`` reply (another client's script runs long) or ``LOADING`` reply makes
a chunk wait and try again, with bounded backoff; the read is idempotent.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import redis

from rqdag.coordinator.phases import STORED_SUCCESS as STORED_SUCCESS  # its home is phases
from rqdag.errors import RqdagError
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import RunState, decode_into, text

log = logging.getLogger("rqdag.coordinator")

T = TypeVar("T")


# A value as rqdag writes a plain success: status first, and no in_doubt flag anywhere.
SUCCESS_PREFIX = b'{"status":"success"'
IN_DOUBT = b'"in_doubt"'

FIRST_COUNT = 100  # fields asked of the first chunk, before the size of a result is known
MAX_COUNT = 1_000  # fields per chunk at most (~1 ms of Redis time for small results)
CHUNK_BYTES = 1 << 20  # values per chunk at most, roughly: large results come a few at a time
MAX_READS = 3  # times the read starts over when the events stream was trimmed past E0
BUSY_WAIT_S = 60.0  # how long one chunk waits for a busy Redis before giving up
# what redis-py puts before the error Redis gave a command of a pipeline
PIPELINE_NOTE = re.compile(r"^Command # \d+ \(.*?\) of pipeline caused error: ", re.S)


def read_progress(client: redis.Redis, run_id: str) -> RunState:
    """The run's results and in-flight attempts, successes as :data:`STORED_SUCCESS`.

    Read in bounded chunks (see the module docstring for why nothing is lost).
    Any other result, and every dispatch entry, is decoded and checked as
    :meth:`RunStore.read_state` does; problems are listed, never raised.
    """
    keys = RunKeys(run_id)
    for _ in range(MAX_READS):
        newest: Any = _busy_retry(lambda: client.xrevrange(keys.events, count=1))
        state = RunState(last_event_id=newest[0][0] if newest else b"0-0")
        dispatch = [pair for chunk in scan_hash(client, keys.dispatch) for pair in chunk.items()]
        others: list[tuple[Any, Any]] = []
        for chunk in scan_hash(client, keys.results):
            _sort_results(state, chunk, others)
        if _stream_holds(client, keys.events, state.last_event_id):
            decode_into(state, run_id, others, dispatch)
            return state
        log.warning("run '%s': events were trimmed while the run was read; reading it again", run_id)
    raise RqdagError(f"run '{run_id}': its events stream moves faster than it can be read")


@dataclass(frozen=True)
class Opening:
    """The opening read of a run (see the module docstring): its raw meta and definition, and its
    progress when the first chunks held all of it (None: read it with :func:`read_progress`)."""

    meta: dict[Any, Any]
    definition: bytes | None
    progress: RunState | None


def read_opening(client: redis.Redis, run_id: str) -> Opening:
    """The meta, definition, newest event and first chunk of the dispatch and results hashes,
    in one MULTI/EXEC of bounded commands; the progress from them when they are whole.

    Not tried again on BUSY: like any first read of a driver, a busy Redis makes the
    driver stop and the service pick the run up again after a backoff.
    """
    keys = RunKeys(run_id)

    with client.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.meta)
        pipe.get(keys.definition)
        pipe.xrevrange(keys.events, count=1)
        pipe.hscan(keys.dispatch, 0, count=FIRST_COUNT)
        pipe.hscan(keys.results, 0, count=FIRST_COUNT)
        try:
            replies = pipe.execute()
        except redis.ResponseError as exc:  # BUSY, LOADING...: the caller backs off and tries again
            raise as_replied(exc) from exc
    meta, definition, newest, (dispatch_cursor, dispatch), (results_cursor, results) = replies
    if int(dispatch_cursor) != 0 or int(results_cursor) != 0:
        return Opening(meta, definition, None)
    state = RunState(last_event_id=newest[0][0] if newest else b"0-0")
    others: list[tuple[Any, Any]] = []
    _sort_results(state, results, others)
    decode_into(state, run_id, others, list(dispatch.items()))
    return Opening(meta, definition, state)


def _sort_results(state: RunState, chunk: dict[Any, Any], others: list[tuple[Any, Any]]) -> None:
    """Plain successes of ``chunk`` into ``state`` by status only; every other result into ``others``."""
    results = state.results
    for raw_name, raw in chunk.items():
        value = raw if type(raw) is bytes else text(raw).encode()
        if value.startswith(SUCCESS_PREFIX) and IN_DOUBT not in value:
            results[text(raw_name)] = STORED_SUCCESS
        else:
            others.append((raw_name, value))


def scan_hash(client: redis.Redis, key: str) -> Iterator[dict[Any, Any]]:
    """The fields of hash ``key``, one HSCAN chunk at a time (a field may come twice).

    The count asked grows to :data:`MAX_COUNT` while values are small and shrinks so
    that a chunk of large values holds about :data:`CHUNK_BYTES`.
    """
    cursor = 0
    count = FIRST_COUNT
    while True:
        reply: Any = _busy_retry(partial(client.hscan, key, cursor, count=count))
        cursor, chunk = reply
        if chunk:
            size = sum(map(len, chunk.values()))
            fit = CHUNK_BYTES * len(chunk) // max(size, 1)
            count = max(1, min(MAX_COUNT, count * 4, fit))
            yield chunk
        if cursor == 0:
            return


def _stream_holds(client: redis.Redis, events_key: str, newest: bytes) -> bool:
    """True unless the stream's head was trimmed past ``newest`` (then later events may be gone)."""
    if newest == b"0-0":
        return True
    first: Any = _busy_retry(lambda: client.xrange(events_key, count=1))
    return not first or stream_id(first[0][0]) <= stream_id(newest)


def stream_id(raw: bytes | str) -> tuple[int, int]:
    """A stream entry id as a comparable pair."""
    ms, _, seq = text(raw).partition("-")
    return int(ms), int(seq or 0)


def is_busy(exc: redis.RedisError) -> bool:
    """True for the replies of a Redis that is busy for a while: ``BUSY`` (a long script) or ``LOADING``."""
    if isinstance(exc, redis.BusyLoadingError):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("BUSY")


def as_replied(exc: redis.ResponseError) -> redis.ResponseError:
    """``exc`` with the text Redis replied: redis-py heads the error of a pipeline's command
    with that command, which would hide a ``BUSY`` from :func:`is_busy` and from the logs."""
    reply = PIPELINE_NOTE.sub("", str(exc), count=1)
    return exc if reply == str(exc) else type(exc)(reply)


def _busy_retry(call: Callable[[], T]) -> T:
    """``call()``, tried again with backoff while Redis answers BUSY, for up to :data:`BUSY_WAIT_S`."""
    deadline = time.monotonic() + BUSY_WAIT_S
    delay = 0.05
    while True:
        try:
            return call()
        except redis.RedisError as exc:
            if not is_busy(exc) or time.monotonic() + delay > deadline:
                raise
            log.debug("Redis is busy (%s); the read goes on in %.2fs", exc, delay)
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
