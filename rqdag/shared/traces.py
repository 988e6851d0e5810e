"""Traces: a span per run and per attempt, sent to the globally configured OpenTelemetry tracer provider.

Tracing is on in a process that has set up a tracer provider with OpenTelemetry
(``rqdag[otel]``), as ``rqdag worker --otel`` does. rqdag itself never imports
OpenTelemetry: where it is not installed, or imported but with no provider set
up, every function here is a no-op (a dictionary look-up or two).

The trace context travels as a W3C ``traceparent``: :func:`current_traceparent`
at ``submit`` (kept in the run's meta), the run span's own in every task job
(:class:`~rqdag.shared.model.job.TaskJob`), so an attempt's span on a worker is
a child of its run's span in the coordinator.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache, wraps
from typing import Any

from rqdag.errors import RqdagError

TRACER = "rqdag"
FAILED = frozenset({"failure", "refused"})


def _trace() -> Any:
    """OpenTelemetry's trace API when this process records spans (a provider is set up), else None.

    Never imported from here. With the API's default provider every span would be
    a no-op: none is made, so an attempt costs nothing.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None
    return trace


def active() -> bool:
    """True when spans are made (a tracer provider is set up in this process)."""
    return _trace() is not None


@lru_cache(maxsize=1)
def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


@lru_cache(maxsize=4)
def _tracer(provider: Any) -> Any:
    return provider.get_tracer(TRACER)


def _traceparent_of(trace: Any, span: Any) -> str | None:
    carrier: dict[str, str] = {}
    _propagator().inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def _parent_context(parent: str | None) -> Any:
    """The context of a stored ``traceparent``; None (the current context) when there is none."""
    return _propagator().extract({"traceparent": parent}) if parent else None


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the caller's current span, or None (no tracing, no span)."""
    trace = _trace()
    if trace is None:
        return None
    return _traceparent_of(trace, trace.get_current_span())


class Span:
    """One span, or nothing when tracing is off (then every method is a no-op)."""

    def __init__(self, span: Any = None, traceparent: str | None = None) -> None:
        self._span = span
        self.traceparent = traceparent  # for the work this span hands on (the run's task jobs)

    def end(self, status: str | None = None) -> None:
        """Set the ``rqdag.status`` attribute (an error status on failure) and end the span."""
        if self._span is None:
            return
        self.set_status(status)
        self._span.end()

    def set_status(self, status: str | None) -> None:
        """Set the ``rqdag.status`` attribute; a failure marks the span as an error."""
        if self._span is None or status is None:
            return
        self._span.set_attribute("rqdag.status", status)
        if status in FAILED:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, status))


def start_run_span(run_id: str, workflow: str, parent: str | None) -> Span:
    """Start the span of one run as driven here, a child of ``parent`` (the submitter's traceparent)."""
    trace = _trace()
    if trace is None:  # the run's jobs still carry the submitter's context, for workers that trace
        return Span(traceparent=parent)
    span = _tracer(trace.get_tracer_provider()).start_span(
        f"run {workflow}",
        context=_parent_context(parent),
        attributes={"rqdag.run_id": run_id, "rqdag.workflow": workflow},
    )
    return Span(span, _traceparent_of(trace, span))


@contextmanager
def attempt_span(
    *, run_id: str, workflow: str, task: str, attempt: int, worker: str, parent: str | None
) -> Iterator[Span]:
    """The span of one attempt, current while the body runs (the task's own spans nest in it)."""
    trace = _trace()
    if trace is None:
        yield Span()
        return
    attributes = {
        "rqdag.run_id": run_id,
        "rqdag.workflow": workflow,
        "rqdag.task": task,
        "rqdag.attempt": attempt,
        "rqdag.worker": worker,
    }
    tracer = _tracer(trace.get_tracer_provider())
    with tracer.start_as_current_span(
        f"task {task.split('[', 1)[0]}", context=_parent_context(parent), attributes=attributes
    ) as span:
        yield Span(span)


def traced_attempt(worker: Callable[[], str]) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Decorate a job function (TaskJob kwargs in, status out) to run in its attempt's span.

    ``worker()`` names the worker (asked only when tracing is on).
    """

    def decorate(run: Callable[..., str]) -> Callable[..., str]:
        @wraps(run)
        def traced(**kwargs: Any) -> str:
            if _trace() is None:
                return run(**kwargs)
            with attempt_span(
                run_id=str(kwargs.get("run_id")),
                workflow=str(kwargs.get("workflow") or ""),
                task=str(kwargs.get("task")),
                attempt=int(kwargs.get("attempt") or 0),
                worker=worker(),
                parent=kwargs.get("traceparent") or None,
            ) as span:
                try:
                    outcome = run(**kwargs)
                except Exception as exc:
                    # an attempt that did not complete tells RQ so by an exception carrying its outcome
                    span.set_status(getattr(exc, "outcome", None))
                    raise
                span.set_status(outcome)
                return outcome

        return traced

    return decorate


def setup_from_environment() -> None:
    """``--otel``: an SDK tracer provider, configured by the standard OTEL_* variables.

    Spans go to OTLP over HTTP (``OTEL_EXPORTER_OTLP_*``), or to stderr with
    ``OTEL_TRACES_EXPORTER=console``; the resource from ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES``.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporter: SpanExporter
        if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
    except ImportError as exc:
        raise RqdagError(
            f"--otel needs the OpenTelemetry SDK and its OTLP exporter ({exc.name} is missing): "
            "pip install 'rqdag[otel]' opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"
        ) from None
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
