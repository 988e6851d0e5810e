"""``rqdag run``: submit a workflow and coordinate it in this process until it ends."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click
from rich.text import Text

from rqdag.cli.common import (
    EXIT_INTERRUPTED,
    exit_for_status,
    handle_errors,
    interrupt_choice,
    interrupt_option,
    json_option,
    meta_to_dict,
    param_option,
    parse_params,
    redis_option,
)
from rqdag.cli.live import progress_display
from rqdag.cli.logs import log_options, setup_logging
from rqdag.cli.output import (
    console,
    counts_line,
    print_json,
    results_table,
    show,
    status_counts,
    styled,
)
from rqdag.cli.prune import retention_option
from rqdag.cli.targets import LoadedTarget, load_target
from rqdag.client import Client, RunHandle, given_run_id
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.service import coordinator_id
from rqdag.local.embedded import EmbeddedRedis
from rqdag.local.local_workers import LocalWorkers
from rqdag.shared.model.codec import snapshot_to_document
from rqdag.shared.model.definition import encode_definition
from rqdag.shared.model.graph import topological_order
from rqdag.shared.model.params import check_params
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.store.retention import DEFAULT_RETENTION_S
from rqdag.shared.store.runs import RunStore

WORKER_CLASSES = ("simple", "fork", "spawn")
DATA_SHOWN = 200  # characters of a final task's data after the table of ``rqdag run``


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwinding like Ctrl-C; it never asks, it detaches."""


def sigterm_as_interrupt() -> None:
    """Let SIGTERM unwind like Ctrl-C, so that finally blocks stop children."""

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, raise_terminated)


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


def coordinate(
    client: Client, handle: RunHandle, *, hand_back: bool = False, retention_s: float = DEFAULT_RETENTION_S
) -> str:
    """Drive the run from this process until it ends; follows another coordinator if one has it."""
    owner = coordinator_id()
    while True:
        driver = RunDriver(
            client.connection, handle.run_id, owner, requeue_running=hand_back, retention_s=retention_s
        )
        status = driver.drive()
        if status is not None:
            return status
        meta = handle.status()
        if meta.finished:
            return meta.status
        time.sleep(0.5)


def report(handle: RunHandle, as_json: bool, show_data: bool | None = None) -> str:
    """Print the run's results (a table, or JSON like ``rqdag status --json``); returns its status.

    ``show_data``: after the table, the data of the workflow's final tasks (those
    nothing depends on), each cut to one line unless True; None: not shown.
    """
    meta = handle.status()
    state = RunStore(handle.connection).read_state(handle.run_id)
    counts = status_counts(state.results, state.dispatch, meta.task_count)
    if as_json:
        print_json({"run": meta_to_dict(meta), **snapshot_to_document(state.results), "counts": counts})
        return meta.status
    tasks = RunStore(handle.connection).read_definition(handle.run_id).tasks
    out = console()
    show(out, results_table(state.results, topological_order(tasks), state.dispatch))
    if show_data is not None:
        for line in final_data_lines(tasks, state.results, whole=show_data):
            out.print(Text(line))
    out.print(f"run {meta.run_id}: [bold]{styled(meta.status)}[/] - {counts_line(counts, meta.task_count)}")
    return meta.status


def final_data_lines(tasks: Sequence[Task], results: Mapping[str, TaskResult], *, whole: bool) -> list[str]:
    """``task: data`` for each final task with data; cut at DATA_SHOWN characters unless ``whole``."""
    needed = {dep for task in tasks for dep in task.depends_on}
    lines = []
    cut = False
    for task in tasks:
        result = results.get(task.name)
        if task.name in needed or result is None or result.data is None:
            continue
        text = json.dumps(result.data, ensure_ascii=False, sort_keys=True, indent=2 if whole else None)
        if not whole and len(text) > DATA_SHOWN:
            text, cut = text[: DATA_SHOWN - 3] + "...", True
        lines.append(f"{task.name}: {text}")
    if cut:
        lines.append("(--show-data prints the whole data)")
    return lines


def _drive_interactively(
    client: Client,
    handle: RunHandle,
    on_interrupt: str,
    progress: bool,
    *,
    hand_back: bool,
    retention_s: float = DEFAULT_RETENTION_S,
) -> bool:
    """Coordinate to the end, with a progress bar when ``progress``; False when detached by Ctrl-C.

    ``hand_back``: the embedded default, whose previous workers are known dead: tasks
    they left running are handed out again at once.
    """
    try:
        with progress_display(client.connection, handle.run_id, console(), enabled=progress):
            coordinate(client, handle, hand_back=hand_back, retention_s=retention_s)
        return True
    except Terminated:
        choice = "detach"
    except KeyboardInterrupt:
        choice = interrupt_choice(on_interrupt)
    if choice != "cancel":
        click.echo(
            f"detached: run {handle.run_id} is paused; run the same command with "
            f"--run-id {handle.run_id} to go on",
            err=True,
        )
        return False
    handle.cancel("cancelled by Ctrl-C")
    click.echo(f"cancelling run {handle.run_id}", err=True)
    coordinate(client, handle, retention_s=retention_s)
    return True


@click.command()
@click.argument("target")
@redis_option
@click.option(
    "--workers", type=int, default=None, help="Local worker processes [default: 2 embedded, 0 with --redis]."
)
@param_option
@click.option("--run-id", default=None, help="Run id; running again with the same id resumes that run.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Most tasks in flight at once.")
@click.option("--timeout", type=float, default=None, help="Run deadline in seconds.")
@click.option("--worker-class", type=click.Choice(WORKER_CLASSES), default="simple", show_default=True)
@interrupt_option("ask")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=".rqdag",
    show_default=True,
    help="Folder of the embedded Redis.",
)
@retention_option
@click.option("--show-data", is_flag=True, help="Print the whole data of the final tasks, not one line each.")
@log_options("warning")
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
    retention_s: float,
    show_data: bool,
    log_level: str,
    log_format: str,
    as_json: bool,
) -> None:
    """Submit TARGET and coordinate it here until it ends.

    TARGET is 'package.module:attribute' or 'path/to/file.py:attribute' (a
    Workflow, or a function returning one). With no --redis (and no REDIS_URL)
    everything runs on an embedded default: a private redis-server with
    append-only persistence in ./.rqdag/ and local worker processes, all stopped
    on exit. Run the same command with the same --run-id after a crash or Ctrl-C
    and the run goes on where it stood. A progress bar shows while stdout is a
    terminal (not with --json). After the table come the data of the final tasks
    (one line each; --show-data for all of it). Exit code: 0 succeeded, 1 failed
    or cancelled, 130 detached by Ctrl-C.
    """
    setup_logging(log_level, log_format)
    os.environ["RQDAG_LOG_FORMAT"] = log_format  # the local workers log the same way
    if run_id is not None:
        given_run_id(run_id)  # refused before a Redis or a worker is started for nothing
    run_params = check_params(parse_params(params))
    loaded = load_target(target)
    encode_definition(loaded.workflow)  # a bad graph is refused before a Redis is started for nothing
    count = workers if workers is not None else (0 if redis_url else 2)
    if count == 0 and not redis_url:
        click.echo(
            f"warning: --workers 0 on the embedded Redis: nothing will run the tasks unless you start "
            f"workers on it (rqdag worker --redis {EmbeddedRedis(Path(data_dir).resolve()).url} ...)",
            err=True,
        )
    sigterm_as_interrupt()
    with _backend(redis_url, data_dir, count, loaded, worker_class) as (client, embedded):
        handle = client.submit(
            loaded.workflow,
            params=run_params,
            run_id=run_id,
            concurrency=concurrency,
            timeout=timeout,
            resume=run_id is not None,
        )
        if embedded:
            # The folder's lock proves the previous owner is gone, and its workers with it.
            RunStore(client.connection).drop_lease(handle.run_id)
        if not as_json:
            click.echo(f"run {handle.run_id} started", err=True)
        progress = not as_json and console().is_terminal
        ended = _drive_interactively(
            client, handle, on_interrupt, progress, hand_back=embedded, retention_s=retention_s
        )
        status = report(handle, as_json, show_data=show_data)
    sys.exit(exit_for_status(status) if ended else EXIT_INTERRUPTED)
