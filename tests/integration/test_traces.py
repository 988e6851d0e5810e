"""Traces: a span per run and per attempt, the attempts' spans children of their run's, across processes.

The test process sets up the OpenTelemetry SDK with an in-memory exporter (once:
the global tracer provider cannot be replaced). A real worker subprocess sets up
its own provider, writing each span to a file as it ends, then starts the
normal worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rqdag import TaskContext, TaskRunnerBuilder, Workflow
from rqdag.shared.model.task import TaskStatus
from tests.integration.flows import recoverable
from tests.support import REPO
from tests.support.hidden import hiding_env
from tests.support.processes import Procs, rqdag_command, rqdag_env
from tests.support.wait import wait_for


class Gated(InMemorySpanExporter):
    """Keeps spans only while a test of this module asks for them (the provider outlives it)."""

    recording = False

    def export(self, spans: Any) -> SpanExportResult:
        """Keep ``spans`` while recording; drop them otherwise."""
        return super().export(spans) if self.recording else SpanExportResult.SUCCESS


EXPORTER = Gated()

WORKER_WITH_SPANS_TO_FILE = """\
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class ToFile(SpanExporter):
    def export(self, spans):
        with open(sys.argv[2], "a", encoding="utf-8") as out:
            for s in spans:
                line = {
                    "name": s.name,
                    "trace_id": format(s.context.trace_id, "032x"),
                    "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                    "attributes": dict(s.attributes),
                    "error": s.status.status_code.name == "ERROR",
                }
                out.write(json.dumps(line) + "\\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ToFile()))
trace.set_tracer_provider(provider)

from rqdag.worker import start_worker

start_worker(sys.argv[1], tasks=["tests.integration.flows"], heartbeat_interval=0.5, name="traced-worker")
"""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The test process's finished spans (the SDK set up once, the exporter emptied per test)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    EXPORTER.recording = True
    yield EXPORTER
    EXPORTER.recording = False
    EXPORTER.clear()


def hex_id(value: int) -> str:
    """A span or trace id as W3C writes it."""
    return format(value, "016x" if value < 1 << 64 else "032x")


def attempts_of(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Attempt spans by (task, attempt)."""
    return {(r["attributes"]["rqdag.task"], r["attributes"]["rqdag.attempt"]): r for r in rows}


def as_row(span: ReadableSpan) -> dict[str, Any]:
    """An SDK span as the worker's file writes it."""
    assert span.context is not None
    return {
        "name": span.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "error": span.status.status_code.name == "ERROR",
    }


def check_attempts(rows: list[dict[str, Any]], run_span: ReadableSpan, worker: str | None) -> None:
    """The recoverable flow's attempts: a, b (failed), d twice; each a child of the run's span."""
    assert run_span.context is not None
    attempts = attempts_of(rows)
    assert set(attempts) == {("a", 1), ("b", 1), ("d", 1), ("d", 2)}
    statuses = {key: row["attributes"]["rqdag.status"] for key, row in attempts.items()}
    assert statuses == {("a", 1): "success", ("b", 1): "failure", ("d", 1): "failure", ("d", 2): "success"}
    for (task, _), row in attempts.items():
        assert row["name"] == f"task {task}"
        assert row["trace_id"] == format(run_span.context.trace_id, "032x")
        assert row["parent_id"] == format(run_span.context.span_id, "016x")
        assert row["attributes"]["rqdag.run_id"] == run_span.attributes["rqdag.run_id"]  # type: ignore[index]
        assert row["attributes"]["rqdag.workflow"] == "recoverable"
        assert row["error"] == (row["attributes"]["rqdag.status"] == "failure")
        if worker is not None:
            assert row["attributes"]["rqdag.worker"] == worker


def test_in_process_a_run_span_under_the_callers_span_and_one_span_per_attempt(
    spans: InMemorySpanExporter,
) -> None:
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        results = TaskRunnerBuilder().with_run_id("traced-local").build().execute(recoverable)
    assert results["d"].status is TaskStatus.SUCCESS and results["b"].status is TaskStatus.FAILURE

    finished = spans.get_finished_spans()
    [run_span] = [s for s in finished if s.name == "run recoverable"]
    assert run_span.parent is not None and run_span.parent.span_id == caller.get_span_context().span_id
    assert dict(run_span.attributes or {}) == {
        "rqdag.run_id": "traced-local",
        "rqdag.workflow": "recoverable",
        "rqdag.status": "failed",
    }
    check_attempts([as_row(s) for s in finished if s.name.startswith("task ")], run_span, None)


def makes_its_own_span(ctx: TaskContext) -> str:
    """A task that traces a step of its own."""
    with trace.get_tracer("user-code").start_as_current_span("inner step"):
        return "done"


def test_a_tasks_own_spans_nest_in_its_attempts_span(spans: InMemorySpanExporter) -> None:
    flow = Workflow("nesting")
    flow.task(name="t")(makes_its_own_span)
    TaskRunnerBuilder().build().execute(flow)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    inner, attempt = by_name["inner step"], by_name["task t"]
    assert inner.parent is not None and attempt.context is not None
    assert inner.parent.span_id == attempt.context.span_id


def test_the_trace_goes_from_submit_through_the_coordinator_to_a_worker_process(
    redis_url: str, procs: Procs, spans: InMemorySpanExporter
) -> None:
    span_file = procs.folder / "worker-spans.jsonl"
    procs.start([sys.executable, "-c", WORKER_WITH_SPANS_TO_FILE, redis_url, str(span_file)], name="worker")
    runner = TaskRunnerBuilder().with_redis(redis_url).with_run_id("traced-remote").build()
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        results = runner.execute(recoverable)  # submit, then this process coordinates
    assert results["d"].metrics.attempt == 2

    [run_span] = [s for s in spans.get_finished_spans() if s.name == "run recoverable"]
    assert run_span.context is not None
    assert run_span.context.trace_id == caller.get_span_context().trace_id
    assert run_span.parent is not None and run_span.parent.span_id == caller.get_span_context().span_id
    assert run_span.attributes == {
        "rqdag.run_id": "traced-remote",
        "rqdag.workflow": "recoverable",
        "rqdag.status": "failed",
    }

    def worker_rows() -> list[dict[str, Any]] | None:
        rows = [json.loads(line) for line in span_file.read_text().splitlines()] if span_file.exists() else []
        return rows if len(rows) >= 4 else None

    rows = wait_for(worker_rows, 10, "the worker's four attempt spans")
    check_attempts(rows, run_span, "traced-worker")


def test_without_opentelemetry_nothing_imports_it_and_runs_work(redis_url: str, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import rqdag\n"
        "from rqdag.client import Client\n"
        "from tests.integration.flows import recoverable\n"
        "results = rqdag.TaskRunnerBuilder().build().execute(recoverable)\n"
        "assert results['d'].status == 'success', results\n"
        "Client(sys.argv[1]).submit(recoverable)\n"
        "import rqdag.worker.job, rqdag.coordinator.service, rqdag.cli\n"
        "leaked = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not leaked, leaked\n"
    )
    env = hiding_env(tmp_path, "opentelemetry")
    argv = [sys.executable, "-c", code, redis_url]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    hidden = subprocess.run(
        [sys.executable, "-c", "import opentelemetry"], cwd=REPO, env=hiding_env(tmp_path, "opentelemetry")
    )
    assert hidden.returncode != 0, "the blocker hides the package"


def test_worker_otel_sets_up_the_sdk_from_the_environment(redis_url: str, tmp_path: Path) -> None:
    argv = rqdag_command(
        "worker", "--redis", redis_url, "--tasks", "tests.integration.flows", "--burst", "--otel"
    )
    env = rqdag_env(OTEL_TRACES_EXPORTER="console")
    ok = subprocess.run(
        argv,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(
        argv, cwd=REPO, env=hiding_env(tmp_path, "opentelemetry"), capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2
    [line] = missing.stderr.strip().splitlines()
    assert line.startswith("error: --otel needs the OpenTelemetry SDK"), line
