"""The long-running services: ``rqdag coordinator`` and ``rqdag worker``."""

from __future__ import annotations

import os
import signal
from types import FrameType

import click

from rqdag.cli.common import (
    handle_errors,
    open_client,
    redact,
    redis_option,
    require_redis,
)
from rqdag.cli.drive import WORKER_CLASSES
from rqdag.cli.logs import log_options, setup_logging
from rqdag.cli.observe import observe_options, start_observing
from rqdag.cli.prune import retention_option
from rqdag.cli.targets import importable_module, importable_path
from rqdag.cli.task_logs import log_limit_options
from rqdag.coordinator.service import CoordinatorService, pool_size
from rqdag.shared.connect import allow_open_files
from rqdag.shared.model.task_logs import LogLimits
from rqdag.shared.store.acl import check_permissions
from rqdag.shared.store.permissions import (
    coordinator_needs,
    worker_needs,
)
from rqdag.shared.store.wait import wait_for_redis
from rqdag.worker import start_worker
from rqdag.worker.environment import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_SHUTDOWN_GRACE_S,
)
from rqdag.worker.start import default_worker_name

wait_for_redis_option = click.option(
    "--wait-for-redis",
    "redis_wait_s",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="At start-up, wait this long for an unreachable Redis (logged, with backoff) "
    "[default: no limit; 0: fail at once].",
)


@click.command()
@redis_option
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Most runs driven at once by this process.",
)
@click.option(
    "--lease-ttl",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds a dead coordinator's runs wait before another takes them over.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between scans for runs it missed or may take over (new runs wake it at once).",
)
@retention_option
@wait_for_redis_option
@observe_options
@log_options("info")
@handle_errors
def coordinator(
    redis_url: str | None,
    max_runs: int,
    lease_ttl: float,
    poll_interval: float,
    retention_s: float,
    redis_wait_s: float | None,
    metrics_port: int | None,
    otel: bool,
    log_level: str,
    log_format: str,
) -> None:
    """Drive every submitted run (a long-running service; safe to redeploy at any time).

    On SIGTERM or Ctrl-C it hands its leases back at once, so another
    coordinator takes over without waiting for the lease TTL. At start-up it
    waits for Redis (see --wait-for-redis), then checks that its Redis user may
    run what a coordinator needs: if not, it exits naming the permission.
    """
    setup_logging(log_level, log_format)
    start_observing(metrics_port, otel)
    connections = pool_size(max_runs)
    allow_open_files(connections)
    client = open_client(redis_url, pool_size=connections, blocking=True)
    wait_for_redis(client.connection, where=redact(redis_url), limit_s=redis_wait_s)
    check_permissions(client.connection, coordinator_needs(), role="a coordinator")
    service = CoordinatorService(
        client.connection,
        max_runs=max_runs,
        lease_ttl_s=lease_ttl,
        poll_s=poll_interval,
        retention_s=retention_s,
        keeper_client=open_client(redis_url, pool_size=1, blocking=True).connection,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.serve()


@click.command()
@redis_option
@click.option(
    "--tasks",
    "tasks",
    multiple=True,
    required=True,
    metavar="MODULE[,MODULE]",
    help="Modules (or .py files) whose functions (and workflows' tasks) this worker may run.",
)
@click.option(
    "--context",
    "context",
    default=None,
    metavar="MODULE:FACTORY",
    help="A factory (or path/to/file.py:FACTORY) called once per process; it returns ctx.context.",
)
@click.option("--queues", default="default", show_default=True, help="Comma-separated RQ queues.")
@click.option(
    "--worker-class",
    type=click.Choice((*WORKER_CLASSES, "concurrent")),
    default="simple",
    show_default=True,
    help="simple: no fork (fastest); fork: a process per job (isolates crashes); spawn; "
    "concurrent: --concurrency slots in one process (chosen when --concurrency > 1).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Tasks this process runs at once: threads for plain functions, one event loop for async ones.",
)
@click.option("--name", default=None, help="Worker name [default: host and pid].")
@click.option(
    "--heartbeat-interval",
    type=float,
    default=DEFAULT_HEARTBEAT_INTERVAL,
    show_default=True,
    help="Seconds between heartbeats of a running task.",
)
@click.option(
    "--heartbeat-timeout",
    "worker_heartbeat_timeout",
    type=float,
    default=None,
    help="This worker's own heartbeat limit (seconds), used instead of the run's for its tasks.",
)
@click.option(
    "--max-result-bytes",
    type=int,
    default=DEFAULT_MAX_RESULT_BYTES,
    show_default=True,
    help="A task's result (its JSON) may not be larger; a larger one becomes a failure.",
)
@click.option(
    "--shutdown-grace",
    type=float,
    default=DEFAULT_SHUTDOWN_GRACE_S,
    show_default=True,
    help="On SIGTERM, seconds the running task has to finish before it is handed back.",
)
@log_limit_options
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@wait_for_redis_option
@observe_options
@log_options("info")
@handle_errors
def worker(
    redis_url: str | None,
    tasks: tuple[str, ...],
    context: str | None,
    queues: str,
    worker_class: str,
    concurrency: int,
    name: str | None,
    heartbeat_interval: float,
    worker_heartbeat_timeout: float | None,
    max_result_bytes: int,
    shutdown_grace: float,
    log_limits: LogLimits,
    burst: bool,
    redis_wait_s: float | None,
    metrics_port: int | None,
    otel: bool,
    log_level: str,
    log_format: str,
) -> None:
    """Run tasks from RQ queues (a real RQ worker: `rq info` shows it).

    Only the functions of the --tasks modules (and the tasks of the workflows
    defined there) can run; a job naming anything else is refused. SIGTERM takes
    no new job and gives the running task --shutdown-grace seconds to finish,
    then hands it back to the coordinator; a second SIGTERM stops at once.
    At start-up it waits for Redis (see --wait-for-redis), then checks that its
    Redis user may run what a worker needs: if not, it exits naming the permission.
    """
    modules, context = _importable(tasks, context)
    names = [q.strip() for q in queues.split(",") if q.strip()]
    name = name or default_worker_name()
    setup_logging(log_level, log_format, fixed={"worker": name})
    url = require_redis(redis_url)
    start_observing(metrics_port, otel)
    with open_client(url).connection as probe:
        wait_for_redis(probe, where=redact(url), limit_s=redis_wait_s)
        check_permissions(probe, worker_needs(name, names), role="a worker")
    start_worker(
        url,
        tasks=modules,
        context=context,
        queues=names,
        worker_class=worker_class,  # type: ignore[arg-type]
        name=name,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout_s=worker_heartbeat_timeout,
        max_result_bytes=max_result_bytes,
        shutdown_grace_s=shutdown_grace,
        log_limits=log_limits,
        concurrency=concurrency,
        burst=burst,
        log_level=log_level.upper(),
    )


def _importable(tasks: tuple[str, ...], context: str | None) -> tuple[list[str], str | None]:
    """The ``--tasks`` modules and ``--context`` path as dotted names; files made importable.

    The folders a file needs go on ``PYTHONPATH`` too, for the fresh interpreters
    of ``--worker-class spawn``.
    """
    folders: list[str] = []
    modules = []
    for item in (m.strip() for entry in tasks for m in entry.split(",")):
        if item:
            module, extra = importable_module(item, what=f"--tasks {item!r}")
            modules.append(module)
            folders += extra
    if context is not None:
        context, extra = importable_path(context, what=f"--context {context!r}")
        folders += extra
    if folders:
        current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*folders, *current]))
    return modules, context
