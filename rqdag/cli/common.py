"""What every command shares: the --redis option, errors, exit codes, output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
import orjson
import redis
from rich.console import Console
from rich.table import Table

from rqdag.errors import RqdagError
from rqdag.shared.model import TaskResult
from rqdag.shared.runs import RunMeta

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2

STATUS_STYLE = {
    "success": "green",
    "failure": "red",
    "skipped": "dim",
    "cancelled": "yellow",
    "succeeded": "green",
    "failed": "red",
    "running": "cyan",
    "pending": "blue",
    "blocked": "magenta",
    "error": "red",
}

redis_option = click.option(
    "--redis",
    "redis_url",
    envvar="REDIS_URL",
    show_envvar=True,
    metavar="URL",
    help="Redis URL: redis://, rediss:// (TLS) or unix://.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def require_redis(redis_url: str | None) -> str:
    """The URL, or a usage error when neither --redis nor REDIS_URL is set."""
    if not redis_url:
        raise click.UsageError("no Redis given: pass --redis URL or set REDIS_URL")
    return redis_url


def handle_errors(func: F) -> F:
    """Turn rqdag and connection errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RqdagError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except redis.ConnectionError as exc:
            click.echo(f"error: cannot reach Redis: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except redis.AuthenticationError as exc:
            click.echo(f"error: Redis refused the credentials: {exc}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON is taken as JSON, else as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        try:
            out[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[key] = value
    return out


def print_json(value: Any) -> None:
    """One JSON document on stdout."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def console() -> Console:
    """A console that degrades to plain text when stdout is not a terminal."""
    return Console(highlight=False, soft_wrap=False)


def results_table(results: Mapping[str, TaskResult], order: list[str] | None = None) -> Table:
    """A table of task results: task, status, attempt, worker, duration, message."""
    table = Table(show_edge=False, header_style="bold")
    for column in ("task", "status", "attempt", "worker", "duration", "message"):
        table.add_column(column)
    for name in order or sorted(results):
        result = results.get(name)
        if result is None:
            table.add_row(name, "-", "", "", "", "")
            continue
        status = result.status.value
        duration = result.metrics.duration_s
        table.add_row(
            name,
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]",
            str(result.metrics.attempt or ""),
            result.metrics.worker or "",
            "" if duration is None else f"{duration:.2f}s",
            (result.message or "").splitlines()[0] if result.message else "",
        )
    return table


def counts_line(results: Mapping[str, TaskResult], total: int) -> str:
    """``3 success, 1 failure, 2 pending (6 tasks)``."""
    counts: dict[str, int] = {}
    for result in results.values():
        counts[result.status.value] = counts.get(result.status.value, 0) + 1
    pending = total - len(results)
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    if pending > 0:
        parts.append(f"{pending} pending")
    return ", ".join(parts) + f" ({total} tasks)"


def meta_to_dict(meta: RunMeta) -> dict[str, Any]:
    """The JSON form of a run's meta (stable field names)."""
    return {
        "run_id": meta.run_id,
        "workflow": meta.workflow,
        "status": meta.status,
        "epoch": meta.epoch,
        "params": meta.params,
        "created_at": meta.created_at,
        "updated_at": meta.updated_at,
        "finished_at": meta.finished_at,
        "cancel": meta.cancel or None,
        "task_count": meta.task_count,
    }


def exit_for_status(status: str | None) -> int:
    """0 when the run succeeded, 1 otherwise."""
    return EXIT_OK if status == "succeeded" else EXIT_RUN_FAILED
