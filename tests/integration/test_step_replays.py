"""The worker's start and finish steps sent again after a lost answer (real Redis, real scripts).

A worker that cannot tell whether its call was written (the connection broke after it was
sent) sends it again. The replay answers as the first call did, writes nothing twice and
leaves no 'refused' event behind; a call that was truly too late is still refused.
"""

from __future__ import annotations

import json

import redis

from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry
from rqdag.shared.store.scripts import FinishOutcome, Scripts, StartOutcome

RUN = "replays"
KEYS = RunKeys(RUN)
RESULT = b'{"status": "failure", "message": "boom", "metrics": {"attempt": 1}}'


def _entry(conn: redis.Redis, attempt: int = 1, retry_of: str | None = None) -> None:
    token = f"{attempt}-{'ab'[attempt - 1]}"
    entry = DispatchEntry(attempt, token, f"job-{attempt}", AttemptState.QUEUED, retry_of=retry_of)
    conn.hset(KEYS.dispatch, "t", entry.to_json())


def _start(scripts: Scripts, claim: str, token: str = "1-a") -> StartOutcome:
    start = scripts.start_task(
        KEYS, task="t", token=token, worker="w", claim=claim, now=1.0, heartbeat_timeout_s=None, depends_on=[]
    )
    return start.outcome


def _finish(scripts: Scripts, *, final: bool, token: str = "1-a") -> FinishOutcome:
    return scripts.finish_task(
        KEYS, task="t", token=token, result=RESULT, status="failure", final=final, now=2.0, inline=True
    )


def _kinds(conn: redis.Redis) -> list[str]:
    return [f[b"kind"].decode() for _, f in conn.xrange(KEYS.events)]


def _setup(conn: redis.Redis) -> Scripts:
    conn.hset(KEYS.meta, mapping={"params": "{}", "status": "running"})
    _entry(conn)
    return Scripts.register(conn)


def test_a_start_sent_again_answers_ok_once_more_and_another_start_is_stale(redis_conn: redis.Redis) -> None:
    scripts = _setup(redis_conn)
    assert _start(scripts, "c1") is StartOutcome.OK
    assert _start(scripts, "c1") is StartOutcome.OK, "a replay of the same start"
    assert _start(scripts, "c2") is StartOutcome.STALE, "any other start finds the attempt taken"
    assert _kinds(redis_conn) == ["started"]


def test_a_final_finish_sent_again_is_written_once_and_not_refused(redis_conn: redis.Redis) -> None:
    scripts = _setup(redis_conn)
    _start(scripts, "c1")
    assert _finish(scripts, final=True) is FinishOutcome.WRITTEN
    assert _finish(scripts, final=True) is FinishOutcome.WRITTEN
    assert redis_conn.hget(KEYS.results, "t") == RESULT
    assert _kinds(redis_conn) == ["started", "finished"]


def test_a_retry_finish_sent_again_is_written_once_also_after_the_retry_was_dispatched(
    redis_conn: redis.Redis,
) -> None:
    scripts = _setup(redis_conn)
    _start(scripts, "c1")
    assert _finish(scripts, final=False) is FinishOutcome.WRITTEN
    assert _finish(scripts, final=False) is FinishOutcome.WRITTEN, "kept in the entry already"
    _entry(redis_conn, attempt=2, retry_of="1-a")  # the coordinator dispatched the retry
    assert _finish(scripts, final=False) is FinishOutcome.WRITTEN, "the retry of this very attempt"
    assert _kinds(redis_conn) == ["started", "retry"]


def test_a_late_finish_is_still_refused(redis_conn: redis.Redis) -> None:
    scripts = _setup(redis_conn)
    _start(scripts, "c1")
    lost = json.loads(redis_conn.hget(KEYS.dispatch, "t") or b"{}")
    redis_conn.hset(KEYS.dispatch, "t", json.dumps({**lost, "state": "lost"}))
    assert _finish(scripts, final=True) is FinishOutcome.STALE
    _entry(redis_conn, attempt=2)  # dispatched again after the loss: no retry_of
    assert _finish(scripts, final=False) is FinishOutcome.STALE
    assert redis_conn.hget(KEYS.results, "t") is None
    assert _kinds(redis_conn) == ["started", "refused", "refused"]
