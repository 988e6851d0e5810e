"""The long-running commands' ``--metrics-port`` and ``--otel`` options, and what they start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from rqdag.shared import metrics, traces

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("rqdag")


def observe_options(func: F) -> F:
    """``--metrics-port`` (``RQDAG_METRICS_PORT``) and ``--otel``."""
    func = click.option(
        "--otel",
        is_flag=True,
        help="Send traces through an OpenTelemetry SDK set up from the OTEL_* variables (rqdag[otel]).",
    )(func)
    return click.option(
        "--metrics-port",
        type=click.IntRange(min=1, max=65535),
        default=None,
        envvar="RQDAG_METRICS_PORT",
        show_envvar=True,
        help="Serve Prometheus metrics on this port, at /metrics (rqdag[metrics]).",
    )(func)


def start_observing(metrics_port: int | None, otel: bool) -> None:
    """Serve metrics and set up tracing as asked; RqdagError (one line) when a part is missing."""
    if otel:
        traces.setup_from_environment()
    if metrics_port is not None:
        metrics.serve(metrics_port)
        log.info("serving metrics on port %d", metrics_port)
