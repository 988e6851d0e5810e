"""Prometheus metrics of coordinators and workers (``--metrics-port``), behind a no-op facade.

The call sites (a worker's job, a coordinator's dispatcher, driver, lease and
service) call this module's functions. Until :func:`serve` runs, each is one
global read and a return, and ``prometheus_client`` (the ``rqdag[metrics]``
extra) is never imported. :func:`serve` defines the metrics in a registry of
their own and serves it over HTTP from a daemon thread; metrics are a
process-wide switch, like logging's configuration, hence the one module-level
recorder.

Labels are the workflow's and the task's names only (a mapped child
``task[KEY]`` counts as its task ``task``), so the series stay as few as the
workflows' tasks. What each process counts:

- worker: ``rqdag_tasks_started_total``, ``rqdag_tasks_finished_total`` (every
  attempt it ran, by the status it ended with), the duration and queue-wait
  histograms, late results refused, slots busy;
- coordinator: ``rqdag_tasks_finished_total`` for the results it decides itself
  (skips, cancels, time-outs), runs by status, attempts lost, handed back or
  sent again unstarted, leases taken over;
- both: Redis errors (by kind) and reconnects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from rqdag.errors import RqdagError
from rqdag.shared.model.result import TaskResult

MISSING = "serving metrics (--metrics-port) needs prometheus_client: pip install 'rqdag[metrics]'"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
WORKFLOW_TASK = ("workflow", "task")


def base_task(task: str) -> str:
    """The task label of ``task``: a mapped child ``name[KEY]`` counts as ``name``."""
    return task.split("[", 1)[0]


class Recorder:
    """The metrics of one process, as Prometheus series (built by :func:`serve`)."""

    def __init__(self, prometheus: Any) -> None:
        p = prometheus
        self.registry = registry = p.CollectorRegistry()
        for collector in (p.ProcessCollector, p.PlatformCollector, p.GCCollector):
            collector(registry=registry)

        def counter(name: str, doc: str, labels: tuple[str, ...] = WORKFLOW_TASK) -> Any:
            return p.Counter(name, doc, labels, registry=registry)

        self.started = counter("rqdag_tasks_started", "Attempts a worker started.")
        self.finished = counter(
            "rqdag_tasks_finished",
            "Attempts a worker ended, and results a coordinator decided, by status.",
            (*WORKFLOW_TASK, "status"),
        )
        self.duration = p.Histogram(
            "rqdag_task_duration_seconds",
            "How long an attempt's task call took.",
            WORKFLOW_TASK,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = p.Histogram(
            "rqdag_task_queue_wait_seconds",
            "From an attempt's dispatch to its start on a worker.",
            WORKFLOW_TASK,
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.refused = counter("rqdag_late_results_refused", "Results refused: their attempt was void.")
        self.slots_busy = p.Gauge("rqdag_worker_slots_busy", "Worker slots running a job.", registry=registry)
        self.runs = p.Gauge(
            "rqdag_runs",
            "Runs this coordinator drives, by status.",
            ("workflow", "status"),
            registry=registry,
        )
        self.runs_finished = counter("rqdag_runs_finished", "Runs that ended here.", ("workflow", "status"))
        self.lost = counter("rqdag_attempts_lost", "Attempts whose worker vanished while they ran.")
        self.handed_back = counter("rqdag_attempts_handed_back", "Attempts a stopping worker handed back.")
        self.unstarted = counter("rqdag_attempts_unstarted", "Attempts taken but never started: sent again.")
        self.leases = counter("rqdag_leases_acquired", "Run leases acquired.", ())
        self.takeovers = counter(
            "rqdag_lease_takeovers", "Leases acquired that another driver held before.", ()
        )
        self.redis_errors = counter("rqdag_redis_errors", "Redis failures, by kind.", ("kind",))
        self.reconnects = counter("rqdag_redis_reconnects", "Redis outages that ended.", ())
        self._lock = threading.Lock()
        self._run_states: dict[str, tuple[str, str]] = {}  # run id -> (workflow, status) driven here

    def run_status(self, run_id: str, workflow: str, status: str, *, finished: bool) -> None:
        """The run driven here is now ``status``; a finished one leaves the gauge for the counter."""
        with self._lock:
            self._leave(run_id)
            if finished:
                self.runs_finished.labels(workflow, status).inc()
            else:
                self._run_states[run_id] = (workflow, status)
                self.runs.labels(workflow, status).inc()

    def run_released(self, run_id: str) -> None:
        """This process no longer drives the run (it ended, or went on elsewhere)."""
        with self._lock:
            self._leave(run_id)

    def _leave(self, run_id: str) -> None:
        before = self._run_states.pop(run_id, None)
        if before is not None:
            self.runs.labels(*before).dec()


_recorder: Recorder | None = None


def serve(port: int, addr: str = "0.0.0.0") -> Recorder:
    """Define the metrics and serve them on ``addr:port``; RqdagError if that cannot be done."""
    global _recorder
    try:
        import prometheus_client  # the optional extra: imported only when metrics are asked for
    except ImportError:
        raise RqdagError(MISSING) from None
    recorder = Recorder(prometheus_client)
    try:
        prometheus_client.start_http_server(port, addr=addr, registry=recorder.registry)
    except OSError as exc:
        raise RqdagError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from None
    _recorder = recorder
    return recorder


def task_started(workflow: str | None, task: str, dispatched_at: float | None) -> None:
    """A worker started an attempt dispatched at ``dispatched_at`` (wall clock)."""
    if _recorder is None:
        return
    labels = (workflow or "", base_task(task))
    _recorder.started.labels(*labels).inc()
    if dispatched_at is not None:
        _recorder.queue_wait.labels(*labels).observe(max(time.time() - dispatched_at, 0.0))


def task_finished(workflow: str | None, task: str, result: TaskResult, *, refused: bool) -> None:
    """A worker ended an attempt with ``result``; ``refused``: the result came too late to be written."""
    if _recorder is None:
        return
    labels = (workflow or "", base_task(task))
    _recorder.finished.labels(*labels, result.status.value).inc()
    if result.metrics.duration_s is not None:
        _recorder.duration.labels(*labels).observe(result.metrics.duration_s)
    if refused:
        _recorder.refused.labels(*labels).inc()


def results_decided(workflow: str, statuses: dict[str, str]) -> None:
    """A coordinator recorded results of its own: task -> status (skips, cancels, time-outs)."""
    if _recorder is None:
        return
    for task, status in statuses.items():
        _recorder.finished.labels(workflow, base_task(task), status).inc()


def attempts_ended_here(workflow: str, ended: Iterable[tuple[str, str]]) -> None:
    """A coordinator found attempts (task, kind) ``lost``, ``handed_back`` or ``unstarted``."""
    if _recorder is None:
        return
    counters = {
        "lost": _recorder.lost,
        "handed_back": _recorder.handed_back,
        "unstarted": _recorder.unstarted,
    }
    for task, kind in ended:
        if kind in counters:
            counters[kind].labels(workflow, base_task(task)).inc()


def slot_busy(delta: int) -> None:
    """A worker slot took a job (+1) or is free again (-1)."""
    if _recorder is not None:
        _recorder.slots_busy.inc(delta)


def run_status(run_id: str, workflow: str, status: str, *, finished: bool) -> None:
    """The run this coordinator drives is now ``status``."""
    if _recorder is not None:
        _recorder.run_status(run_id, workflow, status, finished=finished)


def run_released(run_id: str) -> None:
    """This coordinator no longer drives the run."""
    if _recorder is not None:
        _recorder.run_released(run_id)


def lease_acquired(*, taken_over: bool) -> None:
    """A run's lease was acquired; ``taken_over``: another driver held it before."""
    if _recorder is None:
        return
    _recorder.leases.inc()
    if taken_over:
        _recorder.takeovers.inc()


def redis_error(kind: str) -> None:
    """A Redis call failed (``kind``: the error's type or code)."""
    if _recorder is not None:
        _recorder.redis_errors.labels(kind).inc()


def redis_reconnected(ended: bool) -> None:
    """An outage ended (``ended``, an :meth:`Episode.over` result, says whether one did)."""
    if ended and _recorder is not None:
        _recorder.reconnects.inc()
