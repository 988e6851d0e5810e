"""What every command shares: the --redis and --json options, errors, exit codes.

Exit codes: 0 success; 1 the run failed or was cancelled; 2 a usage or
connection error, with a one-line reason on stderr; 130 interrupted (Ctrl-C)
and detached from a run that goes on. Output helpers live in
:mod:`rqdag.cli.output`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click
import redis

from rqdag.client import Client
from rqdag.errors import RqdagError
from rqdag.shared.connect import DEFAULT_POOL_SIZE, connect
from rqdag.shared.model.codec import loads
from rqdag.shared.model.params import non_finite_number
from rqdag.shared.model.vocabulary import RunStatus
from rqdag.shared.store.records import RunMeta

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

RUN_STATUSES = tuple(s.value for s in RunStatus)  # pending, running, ..., error

redis_option = click.option(
    "--redis",
    "redis_url",
    envvar="REDIS_URL",
    show_envvar=True,
    metavar="URL",
    help="Redis URL: redis://, rediss:// (TLS) or unix://; a password goes in the URL.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (see docs/json.md).")
param_option = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A run parameter: JSON, or else text (NaN and Infinity are refused).",
)


class CommandFailed(click.ClickException):
    """A usage or connection error: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``error: <reason>`` on stderr."""
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def one_line(text: str) -> str:
    """``text`` squeezed onto one line."""
    return " ".join(str(text).split())


def redact(url: str | None) -> str:
    """A Redis URL with its password replaced by ``***``."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url or "")


def require_redis(redis_url: str | None) -> str:
    """The URL, or a usage error when neither --redis nor REDIS_URL is set."""
    if not redis_url:
        raise CommandFailed("no Redis given: pass --redis URL or set REDIS_URL")
    return redis_url


def open_client(
    redis_url: str | None, *, pool_size: int = DEFAULT_POOL_SIZE, blocking: bool = False
) -> Client:
    """A Client of ``redis_url`` (its pool as :func:`~rqdag.shared.connect.connect` makes it);
    a malformed URL is a usage error."""
    url = require_redis(redis_url)
    try:
        return Client(connection=connect(url, pool_size=pool_size, blocking=blocking))
    except ValueError as exc:
        raise CommandFailed(f"bad Redis URL {redact(url)!r}: {one_line(str(exc))}") from None


def handle_errors(func: F) -> F:
    """Turn rqdag and Redis errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        where = redact(kwargs.get("redis_url"))
        try:
            return func(*args, **kwargs)
        except RqdagError as exc:
            raise CommandFailed(one_line(str(exc))) from None
        except redis.AuthenticationError as exc:
            raise CommandFailed(f"Redis at {where} refused the credentials: {one_line(str(exc))}") from None
        except redis.ConnectionError as exc:
            raise CommandFailed(f"cannot reach Redis at {where}: {one_line(str(exc))}") from None
        except redis.TimeoutError as exc:
            raise CommandFailed(f"Redis at {where} did not answer in time: {one_line(str(exc))}") from None
        except redis.ResponseError as exc:
            raise CommandFailed(f"Redis at {where} refused a command: {one_line(str(exc))}") from None

    return wrapper  # type: ignore[return-value]


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON is taken as JSON, else as text.

    A value that is JSON but for a NaN or an infinity (``NaN``, ``1e999``) is refused:
    JSON cannot hold it, and taking it as text would hide the mistake.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        out[key] = _json_or_text(key, value)
    return out


def _json_or_text(key: str, value: str) -> Any:
    try:
        return loads(value, what=f"--param {key}")
    except RqdagError:
        pass
    try:
        loose = json.loads(value)  # the standard library reads NaN, Infinity and 1e999 as floats
    except ValueError:
        return value
    found = non_finite_number(loose)
    if found is None:
        return value
    path, number = found
    raise click.BadParameter(
        f"{key}={value}: parameter '{key}{path}' is {number!r}, and JSON has no NaN or Infinity "
        f"(to pass the text, quote it: {key}='\"{value}\"')",
        param_hint="--param",
    )


def meta_to_dict(meta: RunMeta) -> dict[str, Any]:
    """The JSON form of a run's meta (stable field names, see docs/json.md)."""
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
        "error": meta.error or None,
    }


def exit_for_status(status: str | None) -> int:
    """0 when the run succeeded, 1 otherwise."""
    return EXIT_OK if status == RunStatus.SUCCEEDED else EXIT_RUN_FAILED


def interrupt_choice(on_interrupt: str) -> str:
    """``cancel`` or ``detach``: ``ask`` prompts when stdin and stderr are a terminal, else detaches."""
    if on_interrupt != "ask":
        return on_interrupt
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return "detach"
    try:
        answer: str = click.prompt(
            "\nCancel the run, or detach and leave it be?",
            type=click.Choice(["cancel", "detach"]),
            default="detach",
            err=True,
        )
    except (click.Abort, KeyboardInterrupt, EOFError):
        return "detach"
    return answer


def interrupt_option(default: str) -> Callable[[F], F]:
    """``--on-interrupt ask|cancel|detach`` with the command's own default."""
    return click.option(
        "--on-interrupt",
        type=click.Choice(["ask", "cancel", "detach"]),
        default=default,
        show_default=True,
        help="On Ctrl-C: ask (on a terminal; elsewhere detach), cancel the run, or detach.",
    )
