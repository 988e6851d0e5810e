"""Start and finish steps sent in batches (one pipeline, one script run per attempt; real Redis).

A batch is as fenced as its calls alone: a stale token in it is refused in its
own answer while the other calls land, and the group commit of a concurrent
worker's slots sends calls that meet in one round trip, each answered its own.
"""

from __future__ import annotations

import threading

import redis

from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry, parse_dispatch_entry
from rqdag.shared.store.scripts import FinishOutcome, Scripts, Start, StartOutcome
from rqdag.shared.store.scripts.base import ScriptCall
from rqdag.worker.combine import Combiner, SlotSteps

RUN = "batched"
KEYS = RunKeys(RUN)
TASKS = ("a", "b", "c")


def _setup(conn: redis.Redis) -> Scripts:
    conn.hset(KEYS.meta, mapping={"params": "{}", "status": "running"})
    for task in TASKS:
        entry = DispatchEntry(1, f"tok-{task}", f"job-{task}", AttemptState.QUEUED)
        conn.hset(KEYS.dispatch, task, entry.to_json())
    return Scripts.register(conn)


def _start_call(scripts: Scripts, task: str, token: str) -> ScriptCall:
    return scripts.start_task.request(
        KEYS,
        task=task,
        token=token,
        worker="w",
        claim=f"claim-{task}",
        now=1.0,
        heartbeat_timeout_s=None,
        depends_on=[],
    )


def _finish_call(scripts: Scripts, task: str, token: str) -> ScriptCall:
    result = f'{{"status": "success", "data": "{task}"}}'.encode()
    return scripts.finish_task.request(
        KEYS, task=task, token=token, result=result, status="success", final=True, now=2.0, inline=True
    )


def _state(conn: redis.Redis, task: str) -> str:
    raw = conn.hget(KEYS.dispatch, task)
    return parse_dispatch_entry(RUN, task, raw).state.value if raw else "gone"


def test_a_stale_token_in_a_start_batch_is_refused_while_the_others_start(redis_conn: redis.Redis) -> None:
    scripts = _setup(redis_conn)
    calls = [
        _start_call(scripts, "a", "tok-a"),
        _start_call(scripts, "b", "old-b"),
        _start_call(scripts, "c", "tok-c"),
    ]
    answers = scripts.start_task.many(calls, redis_conn)
    assert [a.outcome for a in answers if isinstance(a, Start)] == [
        StartOutcome.OK,
        StartOutcome.STALE,
        StartOutcome.OK,
    ]
    assert [_state(redis_conn, t) for t in TASKS] == ["running", "queued", "running"]


def test_a_stale_token_in_a_finish_batch_is_refused_while_the_others_land(redis_conn: redis.Redis) -> None:
    scripts = _setup(redis_conn)
    scripts.start_task.many([_start_call(scripts, t, f"tok-{t}") for t in TASKS], redis_conn)
    calls = [
        _finish_call(scripts, "a", "tok-a"),
        _finish_call(scripts, "b", "old-b"),
        _finish_call(scripts, "c", "tok-c"),
    ]
    answers = scripts.finish_task.many(calls, redis_conn)
    assert answers == [FinishOutcome.WRITTEN, FinishOutcome.STALE, FinishOutcome.WRITTEN]
    assert sorted(redis_conn.hkeys(KEYS.results)) == [b"a", b"c"]
    assert _state(redis_conn, "b") == "running", "the late answer changed nothing of b's attempt"


def test_a_batch_reloads_the_script_after_redis_lost_it(redis_conn: redis.Redis) -> None:
    scripts = _setup(redis_conn)
    redis_conn.script_flush()
    answers = scripts.start_task.many([_start_call(scripts, t, f"tok-{t}") for t in TASKS], redis_conn)
    assert [a.outcome for a in answers if isinstance(a, Start)] == [StartOutcome.OK] * 3


def test_slots_that_meet_share_a_round_trip_and_each_gets_its_own_answer(redis_conn: redis.Redis) -> None:
    scripts = _setup(redis_conn)
    steps = SlotSteps(scripts, redis_conn)
    tokens = {"a": "tok-a", "b": "old-b", "c": "tok-c"}
    answers: dict[str, StartOutcome] = {}
    gate = threading.Barrier(len(TASKS))

    def slot(task: str) -> None:
        gate.wait()
        answers[task] = steps.starts.call(_start_call(scripts, task, tokens[task])).outcome

    threads = [threading.Thread(target=slot, args=(t,)) for t in TASKS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == {"a": StartOutcome.OK, "b": StartOutcome.STALE, "c": StartOutcome.OK}
    assert 1 <= steps.starts.batches <= len(TASKS)


def test_a_failed_round_trip_reaches_every_call_of_its_batch_and_the_next_batch_goes_on() -> None:
    sent: list[list[int]] = []

    def send(calls: list[int]) -> list[int | Exception]:
        sent.append(list(calls))
        if 0 in calls:
            raise redis.ConnectionError("gone")
        return [c if c > 0 else ValueError(f"bad {c}") for c in calls]

    combiner: Combiner[int, int] = Combiner(send)  # type: ignore[arg-type]
    try:
        combiner.call(0)
    except redis.ConnectionError:
        pass
    else:
        raise AssertionError("the round trip's error reaches its caller")
    assert combiner.call(5) == 5
    try:
        combiner.call(-1)
    except ValueError as exc:
        assert "bad -1" in str(exc)
    assert sent == [[0], [5], [-1]]
