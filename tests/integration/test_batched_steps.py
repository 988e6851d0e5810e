"""Start and finish steps sent in batches (real Redis; real workers for RQ's view).

A batch is as fenced as its calls alone: a stale token in it is refused in its
own answer while the other calls land, and the group commit of a concurrent
worker's slots sends calls that meet in one round trip, each answered its own.
A batch of finishes is one script run (``finish_jobs``) that also writes RQ's
success bookkeeping of each job written, and of no other: RQ's registries,
job statuses, results and the worker's counters stay truthful, once each.
"""

from __future__ import annotations

import threading

import redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import now as rq_now

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.shared.model.job import RUN_TASK
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.keys import RunKeys, job_id
from rqdag.shared.store.records import DispatchEntry, parse_dispatch_entry
from rqdag.shared.store.scripts import FinishJob, FinishOutcome, Scripts, Start, StartOutcome
from rqdag.shared.store.scripts.base import ScriptCall
from rqdag.worker.combine import Combiner, SlotSteps
from rqdag.worker.environment import WorkerSettings
from rqdag.worker.intake import Taken, take_batch
from rqdag.worker.rq_finish import PendingSuccess, rq_worker
from rqdag.worker.start import create_worker
from tests.integration.flows import recoverable
from tests.integration.slot_flows import four_blocking
from tests.support.processes import Procs
from tests.support.wait import wait_until
from tests.support.workers import worker_queue

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
    steps = SlotSteps(scripts, redis_conn, rq_worker("w"))
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


def _taken_jobs(conn: redis.Redis) -> tuple[Queue, list[Taken]]:
    """Jobs of a, b and c taken by a real concurrent worker: started in RQ's registries."""
    settings = WorkerSettings(tasks=("tests.integration.slot_flows",), concurrency=4)
    worker = create_worker(conn, settings, worker_class="concurrent", name="batcher")
    queue = Queue(worker.queue_names()[0], connection=conn, serializer=JSONSerializer)
    for task in TASKS:
        queue.enqueue(RUN_TASK, kwargs={"task": task}, job_id=f"job-{task}")
    taken = take_batch(worker, queue, len(TASKS))
    for item in taken:
        item.job.started_at = rq_now()
    return queue, taken


def _finish_jobs_calls(
    scripts: Scripts, queue: Queue, taken: list[Taken], tokens: dict[str, str]
) -> list[FinishJob]:
    calls = []
    for task, item in zip(TASKS, taken, strict=True):
        assert item.execution is not None
        pending = PendingSuccess(item.job, queue, item.execution, 60)
        result = f'{{"status": "success", "data": "{task}"}}'.encode()
        calls.append(
            scripts.finish_jobs.request(
                KEYS,
                task=task,
                token=tokens[task],
                result=result,
                status="success",
                final=True,
                now=2.0,
                inline=True,
                rq=pending.part("success"),
            )
        )
    return calls


def test_a_finish_batch_writes_rq_s_success_per_job_and_refuses_a_stale_token_alone(
    redis_conn: redis.Redis,
) -> None:
    scripts = _setup(redis_conn)
    scripts.start_task.many([_start_call(scripts, t, f"tok-{t}") for t in TASKS], redis_conn)
    queue, taken = _taken_jobs(redis_conn)
    calls = _finish_jobs_calls(scripts, queue, taken, {"a": "tok-a", "b": "old-b", "c": "tok-c"})
    worker = rq_worker("batcher")
    redis_conn.script_flush()  # a restarted Redis: the batch loads the script again
    expected = [FinishOutcome.WRITTEN, FinishOutcome.STALE, FinishOutcome.WRITTEN]
    assert scripts.finish_jobs(calls, worker=worker) == expected
    assert sorted(redis_conn.hkeys(KEYS.results)) == [b"a", b"c"]
    assert _state(redis_conn, "b") == "running", "the late answer changed nothing of b's attempt"
    assert sorted(FinishedJobRegistry(queue=queue).get_job_ids()) == ["job-a", "job-c"]
    assert StartedJobRegistry(queue=queue).get_job_ids() == ["job-b"], "b is still RQ's to end"
    statuses = [Job.fetch(f"job-{t}", connection=redis_conn).get_status() for t in TASKS]
    assert statuses == [JobStatus.FINISHED, JobStatus.STARTED, JobStatus.FINISHED]
    done = Job.fetch("job-a", connection=redis_conn, serializer=JSONSerializer)
    latest = done.latest_result()
    assert latest is not None and latest.return_value == "success" and latest.worker_name == "batcher"
    assert done.ended_at is not None and done.started_at is not None and 0 < redis_conn.ttl(done.key) <= 60
    worker_hash = redis_conn.hgetall(worker.worker_key)
    assert int(worker_hash[b"successful_job_count"]) == 2
    members = {m.decode() for m in redis_conn.smembers(worker.worker_executions_key)}
    assert all(m.startswith("job-b:") for m in members) and len(members) == 1

    assert scripts.finish_jobs(calls, worker=worker) == expected, "sent again: the same answers"
    assert int(redis_conn.hget(worker.worker_key, "successful_job_count") or 0) == 2, "counted once"
    assert len(done.results()) == 1, "one result in RQ's stream"


def test_a_concurrent_worker_s_finishes_leave_rq_truthful(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, "--concurrency", "4", name="slots4", tasks="tests.integration.slot_flows")
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(four_blocking, params={"block_s": 0.2}, run_id="finish-batches")
    results = run.wait(timeout=30)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    conn = client.connection
    rq_queue = worker_queue("default", ("tests.integration.slot_flows",))
    finished = FinishedJobRegistry(rq_queue, connection=conn).get_job_ids()
    assert len(finished) == len(results)
    assert StartedJobRegistry(rq_queue, connection=conn).get_job_ids() == []
    for job in Job.fetch_many(finished, connection=conn, serializer=JSONSerializer):
        assert job is not None and job.get_status() == JobStatus.FINISHED
        latest = job.latest_result()
        assert latest is not None and latest.return_value == "success"
    [rq_worker_] = Worker.all(connection=conn)
    assert rq_worker_.successful_job_count == len(results)
    assert conn.scard(rq_worker_.executions_key) == 0


def test_a_concurrent_worker_s_failed_attempts_are_failed_rq_jobs_and_counted_once(
    redis_url: str, procs: Procs
) -> None:
    flows = "tests.integration.flows"
    procs.worker(redis_url, "--concurrency", "4", name="slots-fail", tasks=flows)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    results = client.submit(recoverable, run_id="rq-view").wait(timeout=40)
    assert results["b"].status is TaskStatus.FAILURE and results["d"].metrics.attempt == 2
    conn = client.connection
    rq_queue = worker_queue("default", (flows,))
    expected_failed = {job_id("rq-view", "b", 1), job_id("rq-view", "d", 1)}

    def failed() -> set[str]:
        return set(FailedJobRegistry(rq_queue, connection=conn).get_job_ids())

    # RQ's own failure path runs in the slot after rqdag's result is written, so the run
    # can end (its retry run and all) a moment before RQ has recorded attempt 1's failure
    wait_until(lambda: failed() == expected_failed, 10, "RQ to record the failed attempts")
    assert "failed to persist" not in procs.log("slots-fail")
    finished = set(FinishedJobRegistry(rq_queue, connection=conn).get_job_ids())
    assert finished == {job_id("rq-view", "a", 1), job_id("rq-view", "d", 2)}
    assert StartedJobRegistry(rq_queue, connection=conn).get_job_ids() == []
    [worker] = Worker.all(connection=conn)
    assert (worker.successful_job_count, worker.failed_job_count) == (2, 2)


def test_a_start_batch_script_refuses_a_stale_token_alone_reloads_and_answers_a_replay_the_same(
    redis_conn: redis.Redis,
) -> None:
    scripts = _setup(redis_conn)
    redis_conn.hset(KEYS.results, "dep", b'{"status": "success", "data": 7}')
    calls = [
        scripts.start_task.request(
            KEYS,
            task=task,
            token=token,
            worker="w",
            claim=f"claim-{task}",
            now=1.0,
            heartbeat_timeout_s=None,
            depends_on=["dep", "missing"],
        )
        for task, token in (("a", "tok-a"), ("b", "old-b"), ("c", "tok-c"))
    ]
    redis_conn.script_flush()  # a restarted Redis: the batch loads the script again
    answers = scripts.start_tasks(calls)
    assert [a.outcome for a in answers] == [StartOutcome.OK, StartOutcome.STALE, StartOutcome.OK]
    assert answers[0].inputs == (b'{"status": "success", "data": 7}', None)
    assert [_state(redis_conn, t) for t in TASKS] == ["running", "queued", "running"]
    started = [f for _, f in redis_conn.xrange(KEYS.events) if f[b"kind"] == b"started"]
    assert sorted(f[b"task"] for f in started) == [b"a", b"c"]
    again = scripts.start_tasks(calls)  # the answer was lost: sent again with the same claims
    assert [a.outcome for a in again] == [StartOutcome.OK, StartOutcome.STALE, StartOutcome.OK]
    assert len([f for _, f in redis_conn.xrange(KEYS.events) if f[b"kind"] == b"started"]) == 2
