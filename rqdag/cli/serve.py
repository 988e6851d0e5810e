"""Commands that run things: run, submit, coordinator, worker."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from rqdag.cli.common import (
    console,
    counts_line,
    exit_for_status,
    handle_errors,
    json_option,
    meta_to_dict,
    parse_params,
    print_json,
    redis_option,
    require_redis,
    results_table,
)
from rqdag.client import Client, RunHandle
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.service import CoordinatorService, coordinator_id
from rqdag.embedded import EmbeddedRedis
from rqdag.local_workers import LocalWorkers
from rqdag.shared.codec import snapshot_to_document
from rqdag.shared.graph import topological_order
from rqdag.shared.keys import RunKeys
from rqdag.shared.runs import RunStore
from rqdag.targets import LoadedTarget, load_target
from rqdag.worker import start_worker

WORKER_CLASSES = ("simple", "fork", "spawn")


def setup_logging(level: str) -> None:
    """Log lines on stderr."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def sigterm_as_interrupt() -> None:
    """Let SIGTERM unwind like Ctrl-C, so that finally blocks stop children."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


@contextmanager
def _backend(
    redis_url: str | None, data_dir: str, workers: int, loaded: LoadedTarget, worker_class: str
) -> Iterator[tuple[Client, bool]]:
    """Redis (given, or the embedded one) and local workers, stopped on the way out."""
    embedded = None if redis_url else EmbeddedRedis(Path(data_dir).resolve())
    url = redis_url or embedded.start()  # type: ignore[union-attr]
    local = LocalWorkers(
        url, count=workers, tasks=loaded.modules, python_path=loaded.python_path, worker_class=worker_class
    )
    try:
        local.start()
        yield Client(url), embedded is not None
    finally:
        local.stop()
        if embedded is not None:
            embedded.stop()


def coordinate(client: Client, handle: RunHandle, *, hand_back: bool = False) -> str:
    """Drive the run from this process until it ends; follows another coordinator if one has it."""
    owner = coordinator_id()
    while True:
        driver = RunDriver(client.connection, handle.run_id, owner, requeue_running=hand_back)
        status = driver.drive()
        if status is not None:
            return status
        meta = handle.status()
        if meta.finished:
            return meta.status
        time.sleep(0.5)


def report(handle: RunHandle, as_json: bool) -> str:
    """Print the run's results; returns its status."""
    meta = handle.status()
    results = handle.snapshot()
    if as_json:
        print_json({"run": meta_to_dict(meta), **snapshot_to_document(results)})
    else:
        order = topological_order(RunStore(handle.connection).read_definition(handle.run_id).tasks)
        out = console()
        out.print(results_table(results, order))
        out.print(f"run {meta.run_id}: [bold]{meta.status}[/] - {counts_line(results, meta.task_count)}")
    return meta.status


@click.command()
@click.argument("target")
@redis_option
@click.option(
    "--workers", type=int, default=None, help="Local worker processes [default: 2 embedded, 0 with --redis]."
)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A run parameter (JSON or text).")
@click.option("--run-id", default=None, help="Run id; running again with the same id resumes that run.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Most tasks in flight at once.")
@click.option("--timeout", type=float, default=None, help="Run deadline in seconds.")
@click.option("--worker-class", type=click.Choice(WORKER_CLASSES), default="simple", show_default=True)
@click.option(
    "--on-interrupt",
    type=click.Choice(["detach", "cancel"]),
    default="detach",
    show_default=True,
    help="On Ctrl-C: leave the run to resume later, or cancel it.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=".rqdag",
    show_default=True,
    help="Folder of the embedded Redis.",
)
@json_option
@handle_errors
def run(
    target: str,
    redis_url: str | None,
    workers: int | None,
    params: tuple[str, ...],
    run_id: str | None,
    concurrency: int | None,
    timeout: float | None,
    worker_class: str,
    on_interrupt: str,
    data_dir: str,
    as_json: bool,
) -> None:
    """Submit TARGET and coordinate it here until it ends.

    With no --redis (and no REDIS_URL) everything runs on an embedded default: a
    private redis-server with append-only persistence in ./.rqdag/ and local
    worker processes, all stopped on exit. Run the same command with the same
    --run-id after a crash or Ctrl-C and the run goes on where it stood.
    """
    setup_logging("WARNING")
    loaded = load_target(target)
    count = workers if workers is not None else (0 if redis_url else 2)
    sigterm_as_interrupt()
    with _backend(redis_url, data_dir, count, loaded, worker_class) as (client, embedded):
        handle = client.submit(
            loaded.workflow,
            params=parse_params(params),
            run_id=run_id,
            concurrency=concurrency,
            timeout=timeout,
            resume=run_id is not None,
        )
        if embedded:
            # The folder's lock proves the previous owner is gone, and its workers with it.
            client.connection.delete(RunKeys(handle.run_id).lease)
        if not as_json:
            click.echo(f"run {handle.run_id} started", err=True)
        try:
            coordinate(client, handle, hand_back=embedded)
        except KeyboardInterrupt:
            if on_interrupt == "cancel":
                handle.cancel("cancelled by Ctrl-C")
                coordinate(client, handle)
            else:
                click.echo(
                    f"detached: run {handle.run_id} is paused; run the same command with "
                    f"--run-id {handle.run_id} to go on",
                    err=True,
                )
        status = report(handle, as_json)
    sys.exit(exit_for_status(status))


@click.command()
@click.argument("target")
@redis_option
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A run parameter (JSON or text).")
@click.option("--run-id", default=None, help="Run id [default: a unique one].")
@click.option("--resume", is_flag=True, help="If the run id exists, resume that run instead of failing.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Most tasks in flight at once.")
@click.option("--timeout", type=float, default=None, help="Run deadline in seconds.")
@click.option(
    "--heartbeat-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds without a heartbeat after which a running task counts as lost.",
)
@click.option("--wait", "wait_", is_flag=True, help="Wait for the run to end; exit 1 unless it succeeded.")
@json_option
@handle_errors
def submit(
    target: str,
    redis_url: str | None,
    params: tuple[str, ...],
    run_id: str | None,
    resume: bool,
    concurrency: int | None,
    timeout: float | None,
    heartbeat_timeout: float,
    wait_: bool,
    as_json: bool,
) -> None:
    """Submit TARGET as a new run for the coordinators (prints the run id)."""
    loaded = load_target(target)
    client = Client(require_redis(redis_url))
    handle = client.submit(
        loaded.workflow,
        params=parse_params(params),
        run_id=run_id,
        resume=resume,
        concurrency=concurrency,
        timeout=timeout,
        heartbeat_timeout_s=heartbeat_timeout,
    )
    if not wait_:
        if as_json:
            print_json({"run_id": handle.run_id})
        else:
            click.echo(handle.run_id)
        return
    handle.wait()
    sys.exit(exit_for_status(report(handle, as_json)))


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
@click.option("--log-level", default="INFO", show_default=True)
@handle_errors
def coordinator(redis_url: str | None, max_runs: int, lease_ttl: float, log_level: str) -> None:
    """Drive every submitted run (a long-running service; safe to redeploy at any time).

    On SIGTERM or Ctrl-C it hands its leases back at once, so another
    coordinator takes over without waiting for the lease TTL.
    """
    setup_logging(log_level)
    client = Client(require_redis(redis_url))
    service = CoordinatorService(client.connection, max_runs=max_runs, lease_ttl_s=lease_ttl)

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
    help="Modules whose functions (and workflows' tasks) this worker may run.",
)
@click.option(
    "--context",
    "context",
    default=None,
    metavar="MODULE:FACTORY",
    help="Called once per process; its return value is ctx.context.",
)
@click.option("--queues", default="default", show_default=True, help="Comma-separated RQ queues.")
@click.option(
    "--worker-class",
    type=click.Choice(WORKER_CLASSES),
    default="simple",
    show_default=True,
    help="simple: no fork (fastest); fork: a process per job (isolates crashes); spawn.",
)
@click.option("--name", default=None, help="Worker name [default: host and pid].")
@click.option("--heartbeat-interval", type=float, default=5.0, show_default=True)
@click.option("--max-result-bytes", type=int, default=1 << 20, show_default=True)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--log-level", default="INFO", show_default=True)
@handle_errors
def worker(
    redis_url: str | None,
    tasks: tuple[str, ...],
    context: str | None,
    queues: str,
    worker_class: str,
    name: str | None,
    heartbeat_interval: float,
    max_result_bytes: int,
    burst: bool,
    log_level: str,
) -> None:
    """Run tasks from RQ queues (a real RQ worker: `rq info` shows it)."""
    modules = [m.strip() for item in tasks for m in item.split(",") if m.strip()]
    start_worker(
        require_redis(redis_url),
        tasks=modules,
        context=context,
        queues=[q.strip() for q in queues.split(",") if q.strip()],
        worker_class=worker_class,  # type: ignore[arg-type]
        name=name,
        heartbeat_interval=heartbeat_interval,
        max_result_bytes=max_result_bytes,
        burst=burst,
        log_level=log_level.upper(),
    )
