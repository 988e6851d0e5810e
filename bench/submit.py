"""Section 9, submit latency: one one-task run at a time, from ``Client.submit`` to its result.

Three ways, each timed per run and summed up as p50 and p99 of the runs of a
repetition:

- **service**: ``Client.submit`` to a running ``rqdag coordinator`` process (INFO
  logs), then ``RunHandle.wait()``: what a script that submits to a fleet sees;
- **in-script**: ``Client.submit`` and ``RunDriver.drive()`` in the bench process
  (the other sections' set-up), until ``drive()`` returns, with no service running
  (it would take the run over the moment it is submitted);
- **raw RQ**, the reference: ``Queue.enqueue`` of one no-op job, then
  ``job.latest_result(timeout=...)`` (RQ's blocking read of the job's results).

Runs go one after another on the base worker pools (no other run in flight).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace

from bench.drive import BenchError, run_rqdag
from bench.manyruns import CoordinatorProcess
from bench.session import Session, alternate
from bench.stats import Row, Series, ratios
from bench.tasks import noop
from bench.workloads import RAW_FUNC
from rqdag import Task, Workflow
from rqdag.coordinator.rq_jobs import RQ_FAILURE_TTL_S, RQ_RESULT_TTL_S

SECTION = "9. Submit latency"
TARGET_P50_MS = 10.0
TARGET_P99_MS = 50.0
WAIT_S = 30
WARMUP_RUNS = 3
NOTES = [
    "one run of one no-op task at a time; per repetition the p50 and p99 of its runs, in ms from "
    "before submit (enqueue) to the result in the caller's hands",
    "service: `Client.submit` to a running `rqdag coordinator` process (INFO logs) and "
    "`RunHandle.wait()`; in-script: `Client.submit` and `RunDriver.drive()` in the bench process; "
    "raw RQ: `Queue.enqueue` and `job.latest_result(timeout=...)`",
]

Sample = Callable[[], float]


def one_task(name: str = "bench-submit") -> Workflow:
    """The workflow every submission runs: one no-op task."""
    return Workflow(name, [Task("only", noop)])


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, interpolated between neighbours."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def service_sample(session: Session) -> Sample:
    """One submission to the coordinator service, waited on through its handle; ms."""
    workflow = one_task()

    def sample() -> float:
        t0 = time.perf_counter()
        handle = session.client.submit(workflow, run_id=session.next_id("submit"))
        results = handle.wait(timeout=WAIT_S)
        elapsed = (time.perf_counter() - t0) * 1000
        if results["only"].status != "success":
            raise BenchError(f"run {handle.run_id}: {results['only']}")
        return elapsed

    return sample


def in_script_sample(session: Session) -> Sample:
    """One run driven by a coordinator in the bench process; ms."""
    workflow = one_task("bench-submit-script")

    def sample() -> float:
        timing = run_rqdag(session.client, workflow, session.next_id("script"), WAIT_S)
        if not timing.finished:
            raise BenchError("an in-script one-task run did not finish")
        return timing.seconds * 1000

    return sample


def raw_sample(session: Session) -> Sample:
    """One raw RQ job enqueued and its result awaited; ms."""

    def sample() -> float:
        t0 = time.perf_counter()
        job = session.raw.enqueue(
            RAW_FUNC,
            job_id=session.next_id("rawsubmit").replace("-", "_"),
            job_timeout=-1,
            result_ttl=RQ_RESULT_TTL_S,
            failure_ttl=RQ_FAILURE_TTL_S,
        )
        result = job.latest_result(timeout=WAIT_S)
        elapsed = (time.perf_counter() - t0) * 1000
        if result is None or result.type != result.Type.SUCCESSFUL:
            raise BenchError(f"raw RQ job {job.id} did not succeed: {result}")
        return elapsed

    return sample


def _round(session: Session, sample: Sample, count: int) -> list[float]:
    session.bench.reset()
    for _ in range(WARMUP_RUNS):
        sample()
    return [sample() for _ in range(count)]


def measure(session: Session, count: int) -> list[Row]:
    """``reps`` rounds of ``count`` runs each way: the service and in-script ones paired with raw RQ."""
    rounds: dict[str, list[list[float]]] = {"service": [], "script": [], "raw": []}
    reps = session.config.reps
    service, script, raw = service_sample(session), in_script_sample(session), raw_sample(session)

    def take(way: str, sample: Sample) -> Callable[[], None]:
        return lambda: rounds[way].append(_round(session, sample, count))

    with CoordinatorProcess(session, 10, log_level="INFO"):
        alternate(reps, take("service", service), take("raw", raw))
    # with no service running, which would take these runs over as soon as they are submitted
    for _ in range(reps):
        take("script", script)()
    rows: list[Row] = []
    for q, label, target in ((0.50, "p50", TARGET_P50_MS), (0.99, "p99", TARGET_P99_MS)):
        raw_q = Series.of([percentile(r, q) for r in rounds["raw"]])
        for way, title in (("service", "to a running `rqdag coordinator`"), ("script", "in-script")):
            ours_q = Series.of([percentile(r, q) for r in rounds[way]])
            row = Row(
                SECTION,
                f"one-task run {title}, submit to result, {label} of {count}",
                "ms",
                ours_q,
                raw_q,
                f"RQ: one job enqueued, result awaited ({label})",
                ratios(ours_q, raw_q),
            )
            if way == "service":
                row = replace(row, target=f"<= {target:g} ms", met=ours_q.median <= target)
            rows.append(row)
    return rows
