"""Batched dequeue on a concurrent worker (real processes): nothing taken is lost, RQ stays truthful.

A concurrent worker takes as many jobs as it has free slots in one batch and
records RQ's start of all of them at once (:mod:`rqdag.worker.intake`). These
tests hold it to what a one-job-at-a-time worker guarantees:

- SIGKILL with a batch running: each attempt is lost and run again once, an
  at-most-once one is in doubt, and no success ran twice (the tasks' ledger);
- SIGKILL after a batch was taken, before any of it started: every task runs
  once, at-most-once ones too (their attempts never started);
- RQ's registries tell the truth of a batch: started jobs in the
  StartedJobRegistry while they run, finished ones in the FinishedJobRegistry
  after, nothing left in the intermediate list; a batch not started when the
  worker stops goes back to the front of its queue, ``queued`` again.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.shared.model.job import RUN_TASK
from rqdag.shared.store.runs import RunStore
from rqdag.worker.environment import WorkerSettings
from rqdag.worker.intake import give_back, take_batch
from rqdag.worker.start import create_worker
from tests.integration.slot_flows import batch_in_flight, four_blocking
from tests.support.ledger import successes_ran_once
from tests.support.processes import Procs
from tests.support.wait import wait_until
from tests.support.workers import register_stand_in, worker_queue

SLOT_FLOWS = "tests.integration.slot_flows"


def _running(store: RunStore, run_id: str) -> set[str]:
    return {name for name, e in store.read_state(run_id).dispatch.items() if e.state == "running"}


def _lines(procs: Procs, run_id: str, phase: str) -> list[dict[str, object]]:
    return [x for x in procs.ledger_lines() if x["run_id"] == run_id and x.get("phase") == phase]


def test_sigkill_with_a_batch_in_flight_re_runs_each_lost_attempt_once(redis_url: str, procs: Procs) -> None:
    w1 = procs.worker(redis_url, "--concurrency", "8", name="w1", tasks=SLOT_FLOWS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(batch_in_flight, params={"slow_s": 3}, run_id="killed-batch", heartbeat_timeout_s=1.5)
    wait_until(lambda: len(_running(store, run.run_id)) == 8, 30, "eight tasks in flight")
    os.kill(w1.pid, signal.SIGKILL)
    w1.wait()
    procs.worker(redis_url, "--concurrency", "8", name="w2", tasks=SLOT_FLOWS)
    wait_until(lambda: run.status().status == "blocked", 40, "the run to show as blocked")
    results = run.snapshot()
    for i in range(6):
        assert results[f"b{i}"].status is TaskStatus.SUCCESS and results[f"b{i}"].metrics.attempt == 2
    for i in range(2):
        assert results[f"m{i}"].in_doubt and "outcome unknown" in (results[f"m{i}"].message or "")
    starts = Counter(str(x["task"]) for x in _lines(procs, run.run_id, "start"))
    assert starts == {**{f"b{i}": 2 for i in range(6)}, "m0": 1, "m1": 1}, starts
    ends = _lines(procs, run.run_id, "end")
    assert not successes_ran_once(ends, [f"b{i}" for i in range(6)]), "a success ran twice"


def test_a_worker_killed_between_taking_a_batch_and_starting_it_loses_no_task(
    redis_url: str, procs: Procs
) -> None:
    client = Client(redis_url)
    conn = client.connection
    queue = register_stand_in(conn, (SLOT_FLOWS,), name="stand-in")  # routes the jobs; runs none
    procs.coordinator(redis_url)
    run = client.submit(batch_in_flight, params={"slow_s": 0.2}, run_id="lost-batch", heartbeat_timeout_s=1.5)
    wait_until(lambda: conn.llen(f"rq:queue:{queue}") == 8, 30, "eight jobs queued")
    code = (
        "import os, signal\n"
        "import rqdag.worker.slots as slots\n"
        "from rqdag.worker.start import start_worker\n"
        "taken = slots.take_batch\n"
        "def take_and_die(*args):\n"
        "    if taken(*args):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return []\n"
        "slots.take_batch = take_and_die\n"
        f"start_worker({redis_url!r}, tasks=[{SLOT_FLOWS!r}], concurrency=8, heartbeat_interval=0.5,"
        " name='dies-after-batch')\n"
    )
    dying = procs.python(code, name="dying-worker")
    assert dying.wait(timeout=30) == -9
    started = StartedJobRegistry(queue, connection=conn)
    assert len(started.get_job_ids()) == 8 and conn.llen(f"rq:queue:{queue}") == 0, "the batch was taken"
    procs.worker(redis_url, "--concurrency", "8", name="healthy", tasks=SLOT_FLOWS)
    results = run.wait(timeout=40)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}, results
    assert all(r.metrics.attempt == 2 for r in results.values()), "each first attempt was lost"
    starts = Counter(str(x["task"]) for x in _lines(procs, run.run_id, "start"))
    assert set(starts.values()) == {1} and len(starts) == 8, "every task ran once, at-most-once ones too"


def test_rq_registries_tell_the_truth_of_a_batch(redis_url: str, procs: Procs) -> None:
    procs.worker(redis_url, "--concurrency", "4", name="slots4", tasks=SLOT_FLOWS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    store = RunStore(client.connection)
    run = client.submit(four_blocking, params={"block_s": 2.0}, run_id="truthful-batch")
    wait_until(lambda: len(_running(store, run.run_id)) == 4, 30, "four tasks running")
    rq_queue = worker_queue("default", (SLOT_FLOWS,))
    started = StartedJobRegistry(rq_queue, connection=client.connection)
    running_ids = started.get_job_ids()
    assert len(running_ids) == 4
    assert {Job.fetch(i, connection=client.connection).get_status() for i in running_ids} == {
        JobStatus.STARTED
    }
    assert client.connection.llen(f"rq:queue:{rq_queue}:intermediate") == 0
    results = run.wait(timeout=30)
    assert {r.status for r in results.values()} == {TaskStatus.SUCCESS}
    wait_until(lambda: not started.get_job_ids(), 10, "the started registry to empty")
    finished = FinishedJobRegistry(rq_queue, connection=client.connection)
    assert sorted(finished.get_job_ids()) == sorted(running_ids)
    assert {Job.fetch(i, connection=client.connection).get_status() for i in running_ids} == {
        JobStatus.FINISHED
    }


def test_a_batch_taken_is_started_in_rq_and_given_back_to_the_front_of_its_queue(
    redis_conn: redis.Redis,
) -> None:
    settings = WorkerSettings(tasks=(SLOT_FLOWS,), concurrency=4)
    worker = create_worker(redis_conn, settings, worker_class="concurrent", name="batcher")
    queue = Queue(worker.queue_names()[0], connection=redis_conn, serializer=JSONSerializer)
    ids = [queue.enqueue(RUN_TASK, kwargs={"n": i}, job_id=f"job-{i}").id for i in range(6)]
    taken = take_batch(worker, queue, 4)
    assert [t.job.id for t in taken] == ids[:4]
    started = StartedJobRegistry(queue=queue)
    assert sorted(started.get_job_ids()) == ids[:4]
    assert [Job.fetch(i, connection=redis_conn).get_status() for i in ids[:4]] == [JobStatus.STARTED] * 4
    assert queue.job_ids == ids[4:] and redis_conn.llen(queue.intermediate_queue_key) == 0
    give_back(worker, taken)
    assert queue.job_ids == ids, "back at the front, in their order"
    assert started.get_job_ids() == [] and redis_conn.llen(queue.intermediate_queue_key) == 0
    assert [Job.fetch(i, connection=redis_conn).get_status() for i in ids] == [JobStatus.QUEUED] * 6
    assert len(take_batch(worker, queue, 10)) == 6, "a batch takes what there is"
