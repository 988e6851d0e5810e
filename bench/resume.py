"""Section 4, resume: a new coordinator on a run of N tasks of which half have succeeded.

The run is written straight into Redis: its meta and definition with
:meth:`RunStore.create_run`, then ``success`` results (TaskResult JSON from
:mod:`rqdag.shared.model.codec`) for the root and the first half of the middle tasks of
a ``1 -> N-2 -> 1`` DAG. No lease is held and nothing is in flight: the previous
coordinator is gone. A fresh process (:mod:`bench.resume_child`) then starts
driving it; the bench times from the driver's start to the first job in the RQ
queue, and the child reports its peak memory. Meanwhile the bench PINGs Redis
between its polls of the queue: the slowest answer is how long the takeover blocked
Redis for its other clients. The reference, "floor", is a process that only reads
and decodes the same state and enqueues one job.

The child runs with rqdag's default lease TTL: the coordinator keeps its lease
alive while it loads, however long that takes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass

import redis
from rq import Queue

from bench.config import REPO
from bench.pools import RQDAG_QUEUE, child_env
from bench.session import Session
from bench.stats import Row, Series, judge, ratios
from bench.workloads import task_name, wide_workflow
from rqdag.coordinator.lease import DEFAULT_LEASE_TTL_S
from rqdag.shared.model.codec import encode_result
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.store.keys import RunKeys, capability_queue
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.workers import WorkerInfo, WorkerRegistration, profile_of
from rqdag.worker.registry import build_registry

SECTION = "4. Resume"
TARGET_FIRST_DISPATCH_S = 1.0
TARGET_BYTES_PER_TASK = 1024
TARGET_EXPONENT = 1.10
TARGET_BLOCKED_MS = 50.0
WRITE_CHUNK = 5_000
CHILD_TIMEOUT_S = 600.0
POLL_S = 0.001
LEASE_TTL_S = DEFAULT_LEASE_TTL_S
NOTES = [
    "peak memory is the coordinator process's peak RSS (VmHWM, reset at its start) until its first "
    "dispatch, minus its RSS at start",
    f"the restarted coordinator runs with rqdag's default lease TTL ({LEASE_TTL_S:g} s), which it "
    "keeps alive while it loads",
    "Redis blocked: the slowest PING the bench sent (between its polls of the queue) from the start "
    "to the first dispatch; a BUSY reply is retried and counted in the PING's time",
]


@dataclass(frozen=True)
class Sample:
    """One restart: seconds to the first dispatch (NaN: none), peak memory added per task,
    the slowest PING meanwhile (ms)."""

    first_dispatch_s: float
    bytes_per_task: float
    blocked_ms: float
    ended: str  # what drive() returned when it ended before any dispatch, else ""


def prepare(session: Session, tasks: int) -> str:
    """Write a run of ``tasks`` tasks, half of them succeeded; returns its id."""
    session.bench.reset(keep=())
    workflow = wide_workflow(tasks - 2, name="bench-resume")
    run_id = session.next_id("resume")
    connection = session.client.connection
    RunStore(connection).create_run(workflow, run_id=run_id)
    by_name = {t.name: t for t in workflow.tasks}
    succeeded = ["root"] + [task_name(i) for i in range(tasks // 2 - 1)]
    now = time.time()
    keys = RunKeys(run_id)
    for start in range(0, len(succeeded), WRITE_CHUNK):
        chunk = succeeded[start : start + WRITE_CHUNK]
        mapping = {name: _result_json(run_id, name, by_name[name].definition_hash(), now) for name in chunk}
        connection.hset(keys.results, mapping=mapping)  # type: ignore[arg-type]
    connection.hset(keys.meta, "status", "running")
    return run_id


def register_stand_in(connection: redis.Redis) -> str:
    """A registry entry for a ``bench.tasks`` worker that never runs; returns its queue.

    The coordinator routes jobs only to live workers that can run them: with
    this entry the takeover sends its first job (to that queue) as it would to a
    real fleet, and no worker takes it away before the bench sees it.
    """
    functions = tuple(sorted(build_registry(["bench.tasks"]).functions))
    profile = profile_of(functions)
    queue = capability_queue(RQDAG_QUEUE, profile)
    info = WorkerInfo(
        "bench-stand-in", "bench", 0, (RQDAG_QUEUE,), (queue,), "simple", ("bench.tasks",), profile,
        "bench", sys.version.split()[0], time.time(), 3600.0, functions,
    )  # fmt: skip
    WorkerRegistration(connection, info).publish()
    return queue


def _result_json(run_id: str, name: str, definition_hash: str, now: float) -> bytes:
    result = TaskResult(
        TaskStatus.SUCCESS,
        data={"rows": len(name), "path": f"s3://bench/{run_id}/{name}.parquet"},
        metrics=TaskMetrics(
            started_at=now - 2.5, finished_at=now - 0.5, duration_s=2.0, attempt=1, worker="host-7:41234"
        ),
        definition_hash=definition_hash,
    )
    return encode_result(result, what=f"bench result {name}")


def restore(session: Session, run_id: str) -> None:
    """Undo what a restart changed: jobs, queue, dispatch entries, events, lease."""
    keys = RunKeys(run_id)
    session.client.connection.delete(keys.dispatch, keys.events, keys.lease)
    session.bench.reset(keep=(b"rqdag:",))


def restart_once(session: Session, run_id: str, mode: str, tasks: int) -> Sample:
    """Start a ``mode`` child on the run and time it to the first job in the queue."""
    client = session.bench.client
    # rqdag routes to the stand-in's capability queue; the floor child enqueues into the plain one
    queue = register_stand_in(client) if mode == "rqdag" else RQDAG_QUEUE
    queue_key = Queue(queue, connection=client).key
    log = (session.bench.workdir / "resume-child.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.resume_child",
            mode,
            session.bench.url,
            run_id,
            RQDAG_QUEUE,
            str(LEASE_TTL_S),
        ],
        cwd=REPO,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        return _talk(proc, client, queue_key, tasks)
    finally:
        log.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _talk(proc: subprocess.Popen[str], client: redis.Redis, queue_key: str, tasks: int) -> Sample:
    assert proc.stdin is not None and proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("resume child did not start (see resume-child.log in the bench workdir)")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    first = math.nan
    blocked = 0.0
    while proc.poll() is None:  # a child whose driver returned by itself exits
        blocked = max(blocked, ping_ms(client))
        if client.llen(queue_key):
            first = time.time()
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"resume child dispatched nothing in {CHILD_TIMEOUT_S:g}s")
        time.sleep(POLL_S)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("resume child failed (see resume-child.log in the bench workdir)")
    report = json.loads(line)
    if str(report["status"]).startswith("error"):
        raise RuntimeError(f"resume child: {report['status']}")
    added_kib = max(report["peak_kib"] - report["base_kib"], 0)
    ended = "" if math.isfinite(first) else str(report["status"])
    return Sample(first - report["start"], added_kib * 1024 / tasks, blocked, ended)


def ping_ms(client: redis.Redis) -> float:
    """Milliseconds until Redis answers a PING; a BUSY reply (a script runs) is retried and counted."""
    start = time.perf_counter()
    while True:
        try:
            client.ping()
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSY"):
                raise
            continue
        return (time.perf_counter() - start) * 1000


def measure_size(session: Session, tasks: int) -> tuple[list[Sample], list[Sample]]:
    """Alternating restarts of rqdag and the floor on one prepared run: (rqdag, floor) samples."""
    run_id = prepare(session, tasks)
    ours: list[Sample] = []
    floor: list[Sample] = []
    for rep in range(session.config.reps):
        order = ("rqdag", "floor") if rep % 2 == 0 else ("floor", "rqdag")
        for mode in order:
            (ours if mode == "rqdag" else floor).append(restart_once(session, run_id, mode, tasks))
            restore(session, run_id)
    session.bench.reset(keep=())
    return ours, floor


def size_rows(tasks: int, ours: list[Sample], floor: list[Sample], judged: bool) -> list[Row]:
    """First dispatch, memory and Redis-blocked rows of one size (targets judged at the configured size)."""
    label = f"{tasks:,} tasks, half succeeded"
    first = Series.of([s.first_dispatch_s for s in ours], any(s.ended for s in ours))
    mem = Series.of([s.bytes_per_task for s in ours])
    blocked = Series.of([s.blocked_ms for s in ours])
    rows = (
        ("new coordinator: start to first dispatch", "s", first, f"<= {TARGET_FIRST_DISPATCH_S:g} s",
         first.valid and first.median <= TARGET_FIRST_DISPATCH_S and not first.bound_hit),
        ("new coordinator: peak memory added per task", "B/task", mem, f"< {TARGET_BYTES_PER_TASK:,}",
         judge(mem, mem.median < TARGET_BYTES_PER_TASK)),
        ("Redis blocked during takeover (max PING latency)", "ms", blocked, f"< {TARGET_BLOCKED_MS:g} ms",
         judge(blocked, blocked.median < TARGET_BLOCKED_MS)),
    )  # fmt: skip
    references = (
        Series.of([s.first_dispatch_s for s in floor]),
        Series.of([s.bytes_per_task for s in floor]),
        Series.of([s.blocked_ms for s in floor]),
    )
    return [
        Row(
            section=SECTION,
            measure=f"{measure}, {label}",
            unit=unit,
            rqdag=series,
            reference=reference,
            reference_name="floor: read + decode the state, enqueue 1 job",
            ratio=ratios(series, reference),
            target=target if judged else "",
            met=met if judged else None,
            note=_dispatch_note(ours) if unit == "s" else "",
        )
        for (measure, unit, series, target, met), reference in zip(rows, references, strict=True)
    ]


def _dispatch_note(samples: list[Sample]) -> str:
    notes = []
    ended = [s.ended for s in samples if s.ended]
    if ended:
        notes.append(f"{len(ended)} of {len(samples)} restarts returned without dispatching ({ended[0]})")
    return "; ".join(notes)


def exponent(small: float, large: float, n_small: int, n_large: int) -> float:
    """``k`` in cost ~ n**k between two sizes (1.0 is linear); NaN when a cost is not above zero."""
    if small <= 0 or large <= 0:
        return math.nan
    return math.log(large / small) / math.log(n_large / n_small)


def _seconds(sample: Sample, tasks: int) -> float:
    return sample.first_dispatch_s


def _total_bytes(sample: Sample, tasks: int) -> float:
    return sample.bytes_per_task * tasks


def scaling_rows(
    sizes: tuple[int, int], small: tuple[list[Sample], list[Sample]], large: tuple[list[Sample], list[Sample]]
) -> list[Row]:
    """How first-dispatch time and total memory grow from the small size to the large one."""
    n_small, n_large = sizes
    rows = []
    for what, value in (("time to first dispatch", _seconds), ("peak memory", _total_bytes)):
        series = []
        for side in (0, 1):
            pairs = zip(small[side], large[side], strict=True)
            series.append(
                Series.of(
                    [exponent(value(a, n_small), value(b, n_large), n_small, n_large) for a, b in pairs]
                )
            )
        rows.append(
            Row(
                section=SECTION,
                measure=f"scaling of {what}, {n_small:,} -> {n_large:,} tasks (exponent k in n^k)",
                unit="k",
                rqdag=series[0],
                reference=series[1],
                reference_name="floor",
                ratio=None,
                target=f"<= {TARGET_EXPONENT:.2f} (linear)",
                met=judge(series[0], series[0].median <= TARGET_EXPONENT),
            )
        )
    return rows


def measure(session: Session) -> list[Row]:
    """Every row of section 4."""
    config = session.config
    small = measure_size(session, config.resume_small)
    large = measure_size(session, config.resume)
    rows = size_rows(config.resume_small, *small, judged=False)
    rows += size_rows(config.resume, *large, judged=True)
    rows += scaling_rows((config.resume_small, config.resume), small, large)
    if config.resume_million:
        rows += size_rows(1_000_000, *measure_size(session, 1_000_000), judged=False)
    return rows
