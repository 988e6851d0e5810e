"""The job contract end to end: the dispatcher's RQ job, stored in Redis, parsed by the worker side."""

from __future__ import annotations

import dataclasses
import time

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from rqdag import Task, Workflow
from rqdag.client import Client
from rqdag.coordinator.dispatch import DispatchRequest
from rqdag.coordinator.lease import Lease
from rqdag.coordinator.rq_dispatcher import RQDispatcher
from rqdag.shared.model.job import RUN_TASK, TaskJob
from rqdag.shared.store.keys import RunKeys, job_id
from rqdag.shared.store.records import parse_dispatch_entry
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from tests.support.workers import register_stand_in
from tests.unit.tasks_for_tests import path_of
from tests.unit.test_job_contract import TRACEPARENT, WORKFLOW, expected_fields, full_task

flow = Workflow("contract")
flow.add(Task("extract", path_of("answer")))
flow.add(Task("clean", path_of("answer")))
flow.add(full_task("add_inputs"))


def test_the_job_the_dispatcher_enqueues_is_what_the_worker_parses(redis_conn: redis.Redis) -> None:
    Client(connection=redis_conn).submit(flow, run_id="contract")
    scripts = Scripts.register(redis_conn)
    lease = Lease(redis_conn, scripts, "contract", "test-coordinator")
    assert lease.acquire()
    [task] = [t for t in RunStore(redis_conn).read_task_table("contract").tasks() if t.name == "load"]
    request = DispatchRequest("contract", task, attempt=2, token="2-abc", inputs={}, params={})
    rq_queue = register_stand_in(redis_conn, ("tests.unit.tasks_for_tests",), queue="contract")

    before = time.time()
    RQDispatcher(redis_conn, scripts, lease, workflow=WORKFLOW, traceparent=TRACEPARENT).submit([request])

    jid = job_id("contract", "load", 2)
    assert Queue(rq_queue, connection=redis_conn, serializer=JSONSerializer).job_ids == [jid]
    job = Job.fetch(jid, connection=redis_conn, serializer=JSONSerializer)
    assert job.func_name == RUN_TASK
    assert not job.args
    parsed = TaskJob.from_kwargs(job.kwargs)  # what rqdag.worker.job.run_task does with them
    assert parsed.dispatched_at is not None and before <= parsed.dispatched_at <= time.time()
    sent_at = {"dispatched_at": parsed.dispatched_at}
    assert dataclasses.asdict(parsed) == {**expected_fields(request), **sent_at}
    assert parsed.depends_on == ("extract", "clean") and parsed.retries == 3 and parsed.at_most_once
    entry = parse_dispatch_entry(
        "contract", "load", redis_conn.hget(RunKeys("contract").dispatch, "load") or b""
    )
    assert (entry.job_id, entry.token, entry.attempt, entry.state) == (jid, "2-abc", 2, "queued")
