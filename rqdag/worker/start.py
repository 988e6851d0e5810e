"""Starting an rqdag worker: :func:`start_worker` (what ``rqdag worker`` runs) and its parts."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import time
from collections.abc import Sequence
from typing import Literal

import redis
from rq.logutils import setup_loghandlers
from rq.serializers import JSONSerializer

from rqdag.errors import RqdagError
from rqdag.shared.connect import connect
from rqdag.shared.model.task_logs import LogLimits
from rqdag.shared.store.keys import capability_queue
from rqdag.shared.store.workers import WorkerInfo, WorkerRegistration, profile_of
from rqdag.worker.environment import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_SHUTDOWN_GRACE_S,
    WorkerEnvironment,
    WorkerSettings,
    build_environment,
)
from rqdag.worker.lifecycle import work_until_stopped
from rqdag.worker.rq_classes import ForkTaskWorker, RqdagWorkerMixin, SimpleTaskWorker, SpawnTaskWorker
from rqdag.worker.slots import ConcurrentTaskWorker

WorkerClass = Literal["fork", "simple", "spawn", "concurrent"]
REGISTRY_BEATS = 3  # without --heartbeat-timeout, a worker's registration lapses after 3 silent beats

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
    name = name or default_worker_name()
    env = build_environment(settings, connection, name)
    profile = profile_of(env.registry.functions)
    # one capability queue per queue: only jobs this worker can run are routed there
    rq_queues = [capability_queue(q, profile) for q in names]
    worker = cls(rq_queues, name=name, connection=connection, serializer=JSONSerializer)
    worker.rqdag_settings = settings
    worker._rqdag_environment = env
    worker.rqdag_registration = WorkerRegistration(
        connection, _worker_info(env, settings, name, names, rq_queues, worker_class, profile)
    )
    return worker


def registry_limit(settings: WorkerSettings) -> float:
    """How long a worker's registry entry outlives its last beat: its heartbeat limit."""
    return settings.heartbeat_timeout_s or REGISTRY_BEATS * settings.heartbeat_interval


def _worker_info(
    env: WorkerEnvironment,
    settings: WorkerSettings,
    name: str,
    queues: Sequence[str],
    rq_queues: Sequence[str],
    worker_class: str,
    profile: str,
) -> WorkerInfo:
    try:
        version = importlib.metadata.version("rqdag")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return WorkerInfo(
        name=name,
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=tuple(queues),
        rq_queues=tuple(rq_queues),
        worker_class=worker_class,
        modules=env.registry.modules,
        profile=profile,
        rqdag_version=version,
        python_version=platform.python_version(),
        started_at=time.time(),
        heartbeat_limit_s=registry_limit(settings),
        functions=tuple(sorted(env.registry.functions)),
    )


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
