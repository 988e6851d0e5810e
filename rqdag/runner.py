"""The public API: TaskRunnerBuilder and TaskRunner."""

from __future__ import annotations

import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

from rqdag.client import EMPTY_RUN_ID, Client, new_run_id
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.events import EventBus, Listener
from rqdag.coordinator.executor import WorkflowExecutor
from rqdag.coordinator.inprocess import InProcessDispatcher, TaskFunctions
from rqdag.coordinator.run_outcome import run_status
from rqdag.coordinator.service import coordinator_id
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import RqdagError, WorkflowDefinitionError
from rqdag.shared import traces
from rqdag.shared.model.codec import normalize_snapshot
from rqdag.shared.model.duration import parse_duration
from rqdag.shared.model.graph import topological_order
from rqdag.shared.model.importing import resolve_path
from rqdag.shared.model.params import check_params
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskKind, TaskStatus
from rqdag.shared.model.workflow import Workflow, as_workflow
from rqdag.shared.store.retention import DEFAULT_RETENTION_S


class RqdagWarning(UserWarning):
    """A problem rqdag works around (an unknown task in a snapshot, say)."""


class TaskRunnerBuilder:
    """Configures a :class:`TaskRunner`.

    ``context`` is the caller's own object, handed to every task as ``ctx.context``; never persisted.
    """

    def __init__(self, context: Any = None) -> None:
        self._context = context
        self._snapshot: dict[str, TaskResult] = {}
        self._events = EventBus()
        self._run_id: str | None = None
        self._redis_url: str | None = None
        self._retention_s = DEFAULT_RETENTION_S

    def with_snapshot(self, snapshot: Mapping[str, TaskResult | Mapping[str, Any]]) -> Self:
        """Start from a snapshot: ``dict[str, TaskResult]`` or the same with plain dicts."""
        self._snapshot = normalize_snapshot(snapshot, source="snapshot")
        return self

    def with_redis(self, url: str) -> Self:
        """Run distributed: coordinate inline from here, tasks run on rqdag workers.

        ``url`` is ``redis://``, ``rediss://`` (TLS) or ``unix://``; task functions
        must be importable by path, and workers must list their modules in ``--tasks``.
        """
        self._redis_url = url
        return self

    def with_retention(self, retention: str | float) -> Self:
        """With Redis: how long a finished run stays there (seconds or ``"7d"``; 0: forever),
        unless its workflow sets ``retention``. Default 7 days."""
        self._retention_s = parse_duration(retention, what="retention")
        return self

    def with_run_id(self, run_id: str) -> Self:
        """Use this run id (the idempotency keys derive from it); an empty one is refused."""
        if run_id == "":
            raise RqdagError(EMPTY_RUN_ID)
        self._run_id = run_id
        return self

    def on(self, event: str, callback: Listener) -> Self:
        """Call ``callback(RunEvent)`` on ``event``: task_start, task_end, task_skipped,
        task_retry, workflow_start or workflow_end."""
        self._events.on(event, callback)
        return self

    def build(self) -> TaskRunner:
        """The configured runner."""
        return TaskRunner(
            context=self._context,
            snapshot=self._snapshot,
            events=self._events,
            run_id=self._run_id,
            redis_url=self._redis_url,
            retention_s=self._retention_s,
        )


class TaskRunner:
    """Executes workflows in-process and exposes their snapshot at any moment."""

    def __init__(
        self,
        *,
        context: Any,
        snapshot: Mapping[str, TaskResult],
        events: EventBus,
        run_id: str | None,
        redis_url: str | None = None,
        retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        self._context = context
        self._snapshot = dict(snapshot)
        self._events = events
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._fixed_run_id = run_id is not None
        self._redis_url = redis_url
        self._retention_s = retention_s
        self._state: TaskStateManager | None = None
        self._executor: WorkflowExecutor | None = None
        self._driver: RunDriver | None = None
        self._dispatcher: InProcessDispatcher | None = None
        self._signal_lock = threading.Lock()

    def execute(
        self,
        tasks: Workflow | Iterable[Task],
        *,
        concurrency: int | None = None,
        timeout: float | None = None,
        params: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, TaskResult]:
        """Run the workflow; returns every task's terminal result.

        Tasks that are ``success`` in the runner's snapshot do not run again; all
        others are evaluated. With ``dry_run`` nothing runs: each task that would
        run is reported as ``skipped`` with message ``"dry run: would run"``.
        """
        workflow = as_workflow(tasks)
        workflow.validate()
        params = check_params(params)
        functions = resolve_functions(workflow.tasks)
        state = TaskStateManager(workflow.tasks)
        unknown = state.hydrate(self._snapshot)
        if unknown:
            warnings.warn(
                f"snapshot entries for tasks not in workflow '{workflow.name}' are ignored: "
                + ", ".join(sorted(unknown)),
                RqdagWarning,
                stacklevel=2,
            )
        if dry_run:
            return dry_run_report(workflow.tasks, state.snapshot())
        if self._redis_url is not None:
            return self._execute_distributed(workflow, params, concurrency, timeout)
        subflows = [t.name for t in workflow.tasks if t.kind is TaskKind.SUBFLOW]
        if subflows:
            raise WorkflowDefinitionError(
                f"workflow '{workflow.name}': subflow '{subflows[0]}': child runs require Redis "
                "(TaskRunnerBuilder().with_redis(url), or rqdag submit to a coordinator)"
            )
        span = traces.start_run_span(self.run_id, workflow.name, None)  # a child of the caller's span
        dispatcher = InProcessDispatcher(
            functions, self._context, workflow=workflow.name, traceparent=span.traceparent
        )
        executor = WorkflowExecutor(
            state,
            dispatcher,
            run_id=self.run_id,
            params=params,
            concurrency=concurrency,
            timeout=timeout,
            events=self._events,
        )
        with self._signal_lock:
            self._state, self._executor, self._dispatcher = state, executor, dispatcher
        status: str | None = None
        try:
            results = executor.run()
            status = run_status(results, cancelled=False).value
        finally:
            self._snapshot = state.snapshot()
            with self._signal_lock:
                self._executor = self._dispatcher = None
            span.end(status)
        return results

    def _execute_distributed(
        self,
        workflow: Workflow,
        params: Mapping[str, Any] | None,
        concurrency: int | None,
        timeout: float | None,
    ) -> dict[str, TaskResult]:
        client = Client(self._redis_url)
        run_id = self.run_id if self._fixed_run_id else new_run_id(workflow.name)
        self.run_id = run_id
        handle = client.submit(
            workflow,
            params=params,
            run_id=run_id,
            snapshot=self._snapshot,
            concurrency=concurrency,
            timeout=timeout,
            resume=self._fixed_run_id,
        )
        driver = RunDriver(
            client.connection, run_id, coordinator_id(), events=self._events, retention_s=self._retention_s
        )
        self._driver = driver
        try:
            if driver.drive() is None:
                handle.wait()  # another coordinator drives the run: follow it
            results = handle.snapshot()
        finally:
            self._driver = None
        self._snapshot = results
        return results

    def snapshot(self) -> dict[str, TaskResult]:
        """The current results: ``dict[str, TaskResult]``, also while running."""
        driver = self._driver
        state = driver.state if driver is not None else self._state
        return state.snapshot() if state is not None else dict(self._snapshot)

    def signal(
        self,
        task: str,
        *,
        data: Any = None,
        status: TaskStatus | str = TaskStatus.SUCCESS,
        reason: str | None = None,
    ) -> None:
        """Send a signal to the wait ``task`` of the running execution (from any thread).

        ``success`` completes the wait with ``data``; ``failure`` fails it with
        ``reason``. A signal that comes before the wait is reached is kept until it is.
        """
        if self._redis_url is not None:
            Client(self._redis_url).signal(self.run_id, task, data=data, status=status, reason=reason)
            return
        status = TaskStatus(status)
        with self._signal_lock:
            state, dispatcher = self._state, self._dispatcher
            if state is None or dispatcher is None:
                raise RqdagError(f"cannot signal '{task}': no execution is running")
            try:
                kind = state.task(task).kind
            except KeyError:
                raise RqdagError(f"cannot signal '{task}': the workflow has no such task") from None
            if kind is not TaskKind.WAIT:
                raise RqdagError(f"cannot signal '{task}': it is not a wait (it is a {kind.value})")
            done = state.result(task)
            if done is not None:
                raise RqdagError(
                    f"cannot signal '{task}': the wait has finished already ({done.status.value})"
                )
            dispatcher.signal(task, local_signal(status, data, reason))

    def cancel(self, reason: str = "run cancelled") -> None:
        """Cancel the running execution (safe from another thread or a signal handler)."""
        executor = self._executor
        if executor is not None:
            executor.cancel(reason)
        if self._redis_url is not None and self._driver is not None:
            Client(self._redis_url).run(self.run_id).cancel(reason)


def resolve_functions(tasks: Iterable[Task]) -> TaskFunctions:
    """Each task's function and condition as callables; import errors name the task."""
    out: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = {}
    for task in tasks:
        func = task.func if callable(task.func) else resolve_path(task.func, what=f"task '{task.name}': func")
        cond = task.condition
        condition = (
            cond
            if cond is None or callable(cond)
            else resolve_path(cond, what=f"task '{task.name}': condition")
        )
        out[task.name] = (func, condition)
    return out


def local_signal(status: TaskStatus, data: Any, reason: str | None) -> TaskResult:
    """The result an in-process signal gives its wait."""
    if status is TaskStatus.FAILURE:
        return TaskResult.failure("signalled failure" + (f": {reason}" if reason else ""))
    if status is not TaskStatus.SUCCESS:
        raise RqdagError(f"a signal is success or failure, not {status.value!r}")
    return TaskResult.success(data, message="signalled")


def dry_run_report(tasks: list[Task], kept: Mapping[str, TaskResult]) -> dict[str, TaskResult]:
    """What a run would do: kept successes as they are, every other task 'would run'."""
    out: dict[str, TaskResult] = {}
    for position, name in enumerate(topological_order(tasks)):
        if name in kept and kept[name].status is TaskStatus.SUCCESS:
            out[name] = kept[name]
        else:
            out[name] = TaskResult(TaskStatus.SKIPPED, message="dry run: would run", data={"order": position})
    return out
