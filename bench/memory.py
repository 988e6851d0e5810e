"""Section 7, memory per finished run: what Redis holds for a run once it has ended.

N runs of a small workflow (1 -> 8 -> 1, ten no-op tasks) are driven one after
another on the base worker pool, from an emptied Redis. For each run, the bench
adds up ``MEMORY USAGE ... SAMPLES 0`` (exact) of the run's own keys plus its
share of the run indexes: this is what the run's retention period keeps. The
reference is RQ's keys of the same run's jobs (``rq:job:<id>`` and RQ's results
stream), which RQ deletes ``result_ttl`` (60 s) after each job ends. A second
row takes ``INFO used_memory`` before and after the N runs: everything a
finished run costs the server while RQ's keys are still there, allocator
overhead included.
"""

from __future__ import annotations

import redis

from bench.drive import run_rqdag
from bench.session import Session
from bench.stats import Row, Series, ratios
from bench.workloads import wide_workflow
from rqdag.coordinator.rq_jobs import RQ_RESULT_TTL_S
from rqdag.shared.store import keys
from rqdag.shared.store.runs import RunStore

SECTION = "7. Memory per finished run"
WIDTH = 8  # 1 -> 8 -> 1: ten tasks
NOTES = [
    f"a run of {WIDTH + 2} no-op tasks (1 -> {WIDTH} -> 1), driven to its end by the in-process "
    "coordinator; its keys then live for the retention period (7 days by default)",
    f"RQ's keys of a job are deleted {RQ_RESULT_TTL_S} s after it ends (result_ttl); used_memory is "
    "measured before that, so it includes them",
]


def key_bytes(conn: redis.Redis, names: list[str]) -> int:
    """Exact memory of the keys that exist among ``names`` (MEMORY USAGE, every element sampled)."""
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        sizes = pipe.execute()
    return sum(int(size) for size in sizes if size is not None)


def rq_keys(conn: redis.Redis, run_id: str) -> list[str]:
    """RQ's keys of every job a finished run ran (the job hash and its results stream)."""
    names = []
    for name, result in RunStore(conn).read_results(run_id).items():
        for attempt in range(1, (result.metrics.attempt or 0) + 1):
            job = keys.job_id(run_id, name, attempt)
            names += [f"rq:job:{job}", f"rq:results:{job}"]
    return names


def measure(session: Session, runs: int) -> list[Row]:
    """Per repetition: ``runs`` finished runs; rqdag's keys and RQ's keys per run, and used_memory."""
    workflow = wide_workflow(WIDTH, name="bench-memory")
    conn = session.bench.client
    ours: list[float] = []
    theirs: list[float] = []
    used: list[float] = []
    for _ in range(session.config.reps):
        session.bench.reset()
        before = int(conn.info("memory")["used_memory"])
        ids = [session.next_id("memory") for _ in range(runs)]
        for run_id in ids:
            run_rqdag(session.client, workflow, run_id, session.config.run_bound_s)
        used.append((int(conn.info("memory")["used_memory"]) - before) / runs)
        index_share = key_bytes(conn, [keys.RUNS, keys.EXPIRING_RUNS, keys.ACTIVE_RUNS]) / runs
        for run_id in ids:
            ours.append(key_bytes(conn, keys.RunKeys(run_id).all()) + index_share)
            theirs.append(key_bytes(conn, rq_keys(conn, run_id)))
    rqdag, rq = Series.of(ours), Series.of(theirs)
    return [
        Row(
            section=SECTION,
            measure=f"rqdag keys of one finished run of {WIDTH + 2} tasks, index share included",
            unit="bytes",
            rqdag=rqdag,
            reference=rq,
            reference_name=f"RQ's keys of the same jobs, kept {RQ_RESULT_TTL_S} s",
            ratio=ratios(rqdag, rq),
        ),
        Row(
            section=SECTION,
            measure=f"INFO used_memory per finished run ({runs} runs, RQ's keys not yet expired)",
            unit="bytes",
            rqdag=Series.of(used),
            reference=None,
            reference_name="-",
        ),
    ]
