"""Log output of the long-running commands: ``--log-format human|json``.

``json`` writes one object per line on stderr::

    {"time": "2026-11-28T10:00:00.123Z", "level": "info", "logger": "rqdag.worker",
     "message": "...", "run_id": "...", "task": "...", "attempt": 1, "worker": "host:42"}

``run_id``, ``task``, ``attempt`` and ``worker`` appear when known. They are
taken, first to last, from the record's own ``extra=`` fields, from the RQ job a
worker is running (its kwargs name the run, task and attempt), from the thread
of a coordinator that drives one run (``rqdag-run-<run_id>``), and from the
fixed fields of the process (a worker's name). ``exc`` carries a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar

import click
from rq import get_current_job
from rq.exceptions import DeserializationError

F = TypeVar("F", bound=Callable[..., Any])

LOG_FORMATS = ("human", "json")
CONTEXT_FIELDS = ("run_id", "task", "attempt", "worker")
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RUN_THREAD_PREFIX = "rqdag-run-"  # the coordinator service names a run's thread so


LOG_LEVELS = ("debug", "info", "warning", "error")


def log_options(level: str) -> Callable[[F], F]:
    """``--log-level`` (default ``level``) and ``--log-format``, with env-var fallbacks."""

    def decorate(func: F) -> F:
        func = click.option(
            "--log-format",
            type=click.Choice(LOG_FORMATS),
            default="human",
            show_default=True,
            envvar="RQDAG_LOG_FORMAT",
            show_envvar=True,
            help="human: plain lines; json: one JSON object per line on stderr.",
        )(func)
        return click.option(
            "--log-level",
            type=click.Choice(LOG_LEVELS, case_sensitive=False),
            default=level,
            show_default=True,
            envvar="RQDAG_LOG_LEVEL",
            show_envvar=True,
            help="Least severe level logged.",
        )(func)

    return decorate


def _from_job() -> dict[str, Any]:
    """run_id, task, attempt and worker of the RQ job this thread is running, if any."""
    job = get_current_job()
    if job is None:
        return {}
    try:
        kwargs = job.kwargs
    except DeserializationError:
        return {}
    found: dict[str, Any] = {
        k: kwargs[k] for k in ("run_id", "task", "attempt") if isinstance(kwargs, dict) and k in kwargs
    }
    if job.worker_name:
        found["worker"] = job.worker_name
    return found


class TaskContextFilter(logging.Filter):
    """Sets ``run_id``, ``task``, ``attempt`` and ``worker`` on records that lack them."""

    def __init__(self, fixed: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._fixed = dict(fixed or {})

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill the missing fields; never drops a record."""
        missing = [f for f in CONTEXT_FIELDS if getattr(record, f, None) is None]
        if not missing:
            return True
        found = _from_job()
        thread = record.threadName or ""
        if thread.startswith(RUN_THREAD_PREFIX):
            found.setdefault("run_id", thread[len(RUN_THREAD_PREFIX) :])
        for name, value in self._fixed.items():
            found.setdefault(name, value)
        for name in missing:
            if found.get(name) is not None:
                setattr(record, name, found[name])
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        body: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                body[name] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, default=str, ensure_ascii=False)


def setup_logging(
    level: str, fmt: str = "human", *, fixed: Mapping[str, Any] | None = None, stream: IO[str] | None = None
) -> None:
    """Send every log record of this process to stderr in ``fmt`` (replaces earlier handlers).

    ``fixed``: fields every JSON line carries unless the record has its own (a
    worker's name).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        handler.addFilter(TaskContextFilter(fixed))
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
