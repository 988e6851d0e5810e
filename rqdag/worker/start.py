"""Starting an rqdag worker: :func:`start_worker` (what ``rqdag worker`` runs) and its parts."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Literal

import redis
from rq.logutils import setup_loghandlers
from rq.serializers import JSONSerializer

from rqdag.errors import RqdagError
from rqdag.shared.connect import connect
from rqdag.shared.model.task_logs import LogLimits
from rqdag.worker.environment import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_SHUTDOWN_GRACE_S,
    WorkerSettings,
)
from rqdag.worker.lifecycle import work_until_stopped
from rqdag.worker.rq_classes import ForkTaskWorker, RqdagWorkerMixin, SimpleTaskWorker, SpawnTaskWorker
from rqdag.worker.slots import ConcurrentTaskWorker

WorkerClass = Literal["fork", "simple", "spawn", "concurrent"]

WORKER_CLASSES: dict[str, type[RqdagWorkerMixin]] = {
    "fork": ForkTaskWorker,
    "simple": SimpleTaskWorker,
    "spawn": SpawnTaskWorker,
    "concurrent": ConcurrentTaskWorker,
}


def resolve_worker_class(worker_class: str, concurrency: int) -> WorkerClass:
    """The class to run: ``concurrent`` when more than one slot is asked of the default class."""
    if concurrency < 1:
        raise RqdagError(f"--concurrency must be >= 1, got {concurrency}")
    if concurrency == 1 or worker_class == "concurrent":
        return worker_class  # type: ignore[return-value]
    if worker_class == "simple":
        return "concurrent"
    raise RqdagError(
        f"--concurrency {concurrency} needs the concurrent worker class, not {worker_class!r} "
        "(a forking or spawning worker runs one task per process)"
    )


def default_worker_name() -> str:
    """``host:pid``, the name a worker gets unless given one."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create_worker(
    connection: redis.Redis,
    settings: WorkerSettings,
    *,
    queues: Sequence[str] = ("default",),
    worker_class: WorkerClass = "simple",
    name: str | None = None,
) -> RqdagWorkerMixin:
    """Build (not start) an rqdag worker; imports the ``--tasks`` modules now."""
    try:
        cls = WORKER_CLASSES[worker_class]
    except KeyError:
        raise RqdagError(
            f"unknown worker class {worker_class!r} (expected one of {', '.join(WORKER_CLASSES)})"
        ) from None
    names = [queues] if isinstance(queues, str) else list(queues)
    worker = cls(names, name=name or default_worker_name(), connection=connection, serializer=JSONSerializer)
    worker.rqdag_settings = settings
    worker.rqdag_environment()
    return worker


def start_worker(
    redis_url: str,
    *,
    tasks: Sequence[str],
    context: str | None = None,
    queues: Sequence[str] = ("default",),
    worker_class: WorkerClass = "simple",
    name: str | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S,
    heartbeat_timeout_s: float | None = None,
    log_limits: LogLimits | None = None,
    concurrency: int = 1,
    burst: bool = False,
    log_level: str = "INFO",
) -> None:
    """Run an rqdag worker until it is stopped (with ``burst``: until its queues are empty).

    ``tasks``: the modules whose functions (and whose workflows' tasks) may run;
    they are imported now, so a broken module stops the worker at once.
    ``heartbeat_timeout_s``: this worker's own heartbeat limit (say, for hosts
    with long pauses); the coordinator uses it for this worker's attempts
    instead of the run's limit.
    ``context``: ``"pkg.mod:factory"``, called with no arguments once per
    process to build ``ctx.context``. ``name`` defaults to ``host:pid``.
    ``log_limits``: how much of each task's output (``logging``, stdout,
    stderr) goes to its run's logs stream (``rqdag logs``); ``LogLimits(0)``
    captures none.

    ``worker_class``: ``"simple"`` (the default) runs jobs in the worker process:
    the fastest, as a forking worker runs at about a quarter of its throughput,
    and rqdag already turns every task error into a result. ``"fork"`` runs
    each job in a forked horse, which isolates the worker from a task that leaks
    memory or crashes the interpreter (a segfault fails that job, not the
    worker); ``"spawn"`` does the same with a fresh interpreter per job.
    ``concurrency`` > 1 (the ``"concurrent"`` class, chosen for it): up to that
    many tasks at once in this process, plain functions in threads and
    ``async def`` tasks on one event loop, each with its own heartbeat, timeout
    and grace period.

    SIGTERM (or Ctrl-C) asks for a warm shutdown: the worker takes no new job and
    the current task has ``shutdown_grace_s`` to finish and report. Past that
    (simple worker) it is handed back: the coordinator dispatches it again at
    once, or marks an at-most-once task's outcome unknown. A second signal stops
    at once; the coordinator then sees the attempt's heartbeat stop.
    """
    setup_loghandlers(log_level, name="rqdag")
    worker_class = resolve_worker_class(worker_class, concurrency)
    settings = WorkerSettings(
        tasks=(tasks,) if isinstance(tasks, str) else tuple(tasks),
        context=context,
        heartbeat_interval=heartbeat_interval,
        max_result_bytes=max_result_bytes,
        shutdown_grace_s=shutdown_grace_s,
        heartbeat_timeout_s=heartbeat_timeout_s,
        log_limits=log_limits or LogLimits(),
        concurrency=concurrency,
    )
    # RQ raises this client's socket timeout to its dequeue timeout + 10 s, for its
    # blocking dequeue; the job and heartbeat threads share the client's pool.
    connection = connect(redis_url)
    try:
        work_until_stopped(
            lambda: create_worker(connection, settings, queues=queues, worker_class=worker_class, name=name),
            burst=burst,
            log_level=log_level,
        )
    finally:
        connection.close()
