"""The workloads of both sides: rqdag workflows and the raw RQ jobs they are compared with."""

from __future__ import annotations

from rq import Queue
from rq.queue import EnqueueData

from bench.tasks import items, noop
from rqdag import Task, Workflow
from rqdag.coordinator.rq_jobs import RQ_FAILURE_TTL_S, RQ_RESULT_TTL_S

RAW_FUNC = "bench.tasks.raw_noop"


def task_name(i: int) -> str:
    """The name of the i-th task of a workload."""
    return f"t{i:07d}"


def wide_workflow(width: int, name: str = "bench-wide") -> Workflow:
    """1 root -> ``width`` parallel tasks -> 1 join: ``width + 2`` no-op tasks."""
    middle = [task_name(i) for i in range(width)]
    tasks = [Task("root", noop)]
    tasks += [Task(n, noop, depends_on=("root",)) for n in middle]
    tasks.append(Task("join", noop, depends_on=middle))
    return Workflow(name, tasks)


def mapped_workflow(width: int, name: str = "bench-mapped") -> Workflow:
    """1 root returning ``width`` items -> a no-op mapped over them -> 1 join (``params['width']``)."""
    return Workflow(
        name,
        [
            Task("root", items),
            Task("fan", noop, map_over="root", max_items=max(width, 1)),
            Task("join", noop, depends_on=("fan",)),
        ],
    )


def chain_workflow(length: int, name: str = "bench-chain") -> Workflow:
    """``length`` no-op tasks, each depending on the one before."""
    tasks = [Task(task_name(0), noop)]
    tasks += [Task(task_name(i), noop, depends_on=(task_name(i - 1),)) for i in range(1, length)]
    return Workflow(name, tasks)


def _raw(job_id: str, depends_on: list[str] | None = None) -> EnqueueData:
    # The same job settings rqdag's dispatcher gives its jobs: no RQ timeout, the same TTLs.
    return Queue.prepare_data(
        RAW_FUNC,
        job_id=job_id,
        timeout=-1,
        result_ttl=RQ_RESULT_TTL_S,
        failure_ttl=RQ_FAILURE_TTL_S,
        depends_on=depends_on,  # type: ignore[arg-type]
    )


def raw_independent(count: int, tag: str) -> list[EnqueueData]:
    """``count`` independent no-op jobs."""
    return [_raw(f"{tag}_{i}") for i in range(count)]


def raw_chain(length: int, tag: str) -> list[EnqueueData]:
    """``length`` no-op jobs, each with RQ's ``depends_on`` the one before."""
    ids = [f"{tag}_{i}" for i in range(length)]
    return [_raw(ids[0])] + [_raw(ids[i], [ids[i - 1]]) for i in range(1, length)]


def raw_fanin(width: int, tag: str) -> list[EnqueueData]:
    """1 root -> ``width`` jobs -> 1 join, with RQ's ``depends_on``: ``width + 2`` jobs."""
    root = f"{tag}_root"
    middle = [f"{tag}_{i}" for i in range(width)]
    return [_raw(root)] + [_raw(m, [root]) for m in middle] + [_raw(f"{tag}_join", middle)]
