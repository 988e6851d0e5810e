"""``rqdag logs RUN [TASK]``: what a run's tasks wrote, and the worker's options that limit it.

A worker captures what each attempt writes with ``logging`` and to stdout and
stderr into the run's logs stream (see :mod:`rqdag.worker.capture`); this
command reads it back, oldest line first, or follows it while the run goes on.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from rqdag.cli.common import EXIT_INTERRUPTED, handle_errors, json_option, open_client, redis_option
from rqdag.errors import RqdagError
from rqdag.shared.model.task_logs import (
    DEFAULT_ATTEMPT_BYTES,
    DEFAULT_ATTEMPT_LINES,
    DEFAULT_RUN_LINES,
    LogLimits,
    LogLine,
)
from rqdag.shared.model.vocabulary import LogStream
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.task_logs import follow_task_logs, read_task_logs

F = TypeVar("F", bound=Callable[..., Any])

_LIMIT_OPTIONS = (  # flag, lowest value, default, help
    (
        "--task-log-lines",
        0,
        DEFAULT_ATTEMPT_LINES,
        "Lines of each attempt's output (logging, stdout, stderr) kept for 'rqdag logs'; 0: none.",
    ),
    (
        "--task-log-bytes",
        1,
        DEFAULT_ATTEMPT_BYTES,
        "Bytes of each attempt's output kept; past this or --task-log-lines, a 'truncated' mark.",
    ),
    (
        "--run-log-lines",
        1,
        DEFAULT_RUN_LINES,
        "About this many lines kept per run: its oldest are dropped past it.",
    ),
)

TRIMMED = "older lines of this run were dropped: it wrote more than its limit of lines per run"


def log_limit_options(func: F) -> F:
    """A worker's ``--task-log-lines``, ``--task-log-bytes`` and ``--run-log-lines``, given to
    ``func`` as one ``log_limits`` (:class:`LogLimits`)."""

    @functools.wraps(func)
    def wrapper(
        *args: Any, task_log_lines: int, task_log_bytes: int, run_log_lines: int, **kwargs: Any
    ) -> Any:
        try:
            limits = LogLimits(task_log_lines, task_log_bytes, run_log_lines)
        except RqdagError as exc:
            raise click.BadParameter(str(exc), param_hint="--task-log-bytes / --run-log-lines") from None
        return func(*args, log_limits=limits, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for flag, low, default, text in reversed(_LIMIT_OPTIONS):
        decorated = click.option(
            flag, type=click.IntRange(min=low), default=default, show_default=True, help=text
        )(decorated)
    return decorated  # type: ignore[return-value]


def format_line(line: LogLine, with_task: bool = True) -> str:
    """One line for people: time, task and attempt, where it came from, the message."""
    stamp = time.strftime("%H:%M:%S", time.localtime(line.at)) + f".{int(line.at * 1000) % 1000:03d}"
    who = f"{line.task}#{line.attempt}" if with_task else f"#{line.attempt}"
    if line.stream is LogStream.LOG:
        where = f"{(line.level or '').upper()} {line.logger or ''}:"
    elif line.truncated:
        where = "--"
    else:
        where = f"{line.stream.value}:"
    first, *rest = line.message.split("\n")
    return "\n".join([f"{stamp} {who} {where} {first}", *(f"    {more}" for more in rest)])


def _emit(lines: Iterable[LogLine], run_id: str, as_json: bool, with_task: bool) -> None:
    for line in lines:
        if as_json:
            click.echo(json.dumps(line.to_dict(run_id), ensure_ascii=False, sort_keys=True))
        else:
            click.echo(format_line(line, with_task))
        sys.stdout.flush()


def _trimmed_mark(run_id: str, as_json: bool) -> None:
    if as_json:
        mark = {"run_id": run_id, "task": None, "attempt": None, "at": None, "stream": "truncated"}
        click.echo(json.dumps({**mark, "level": None, "logger": None, "message": TRIMMED, "id": None}))
    else:
        click.echo(f"-- {TRIMMED}")


@click.command("logs")
@click.argument("run_id")
@click.argument("task", required=False)
@click.option("--attempt", type=click.IntRange(min=1), default=None, help="Only this attempt's lines.")
@click.option("--follow", "-f", is_flag=True, help="Go on printing lines as they come until the run ends.")
@redis_option
@json_option
@handle_errors
def logs(
    run_id: str, task: str | None, attempt: int | None, follow: bool, redis_url: str | None, as_json: bool
) -> None:
    """Show what the run's tasks wrote (logging, stdout, stderr), by attempt, oldest first.

    With TASK, only that task's lines; with --attempt, only that attempt's. With
    --follow, lines go on printing as workers send them (every 0.1 s) until the
    run ends. --json prints one JSON object per line (see docs/json.md). Output
    past a worker's limits is cut with a 'truncated' line.
    """
    store = RunStore(open_client(redis_url).connection)
    found = read_task_logs(store, run_id, task, attempt)
    if (
        task is not None
        and not found.lines
        and task not in {t.name for t in store.read_definition(run_id).tasks}
    ):
        raise RqdagError(f"run '{run_id}' has no task '{task}'")
    if found.trimmed:
        _trimmed_mark(run_id, as_json)
    with_task = task is None
    _emit(found.lines, run_id, as_json, with_task)
    if not follow:
        return
    try:
        _emit(follow_task_logs(store, run_id, found.last_id, task, attempt), run_id, as_json, with_task)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
