"""InProcessDispatcher: each attempt runs in a thread of this process (an ``async def`` task
on the process's event loop); state in memory."""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from rqdag.coordinator.dispatch import Completion, CompletionKind, DispatchRequest
from rqdag.errors import RqdagError
from rqdag.shared import aio, traces
from rqdag.shared.model.context import TaskContext, idempotency_key
from rqdag.shared.model.invoke import Attempt, ainvoke_attempt, invoke_attempt, is_async
from rqdag.shared.model.mapping import Expansion, parent_of
from rqdag.shared.model.result import TaskResult

TaskFunctions = Mapping[str, tuple[Callable[..., Any], Callable[..., Any] | None]]


class InProcessDispatcher:
    """Runs every attempt in its own daemon thread, and every ``async def`` one on the event loop.

    A thread per attempt, not a pool, so an attempt that timed out and ignores
    ``ctx.cancelled`` does not hold a slot that the run's concurrency limit counts.
    An async attempt given up on (its timeout, a cancel) is cancelled on the loop.
    """

    def __init__(
        self, functions: TaskFunctions, context: Any, *, workflow: str = "", traceparent: str | None = None
    ) -> None:
        """``workflow`` and ``traceparent`` (the run span's) label each attempt's span."""
        self._workflow = workflow
        self._traceparent = traceparent
        self._functions = functions
        self._context = context
        # SimpleQueue: put() is reentrant, so wake() is safe from a signal handler.
        self._queue: queue.SimpleQueue[Completion | None] = queue.SimpleQueue()
        self._buffer: list[Completion] = []
        self._cancel_events: dict[tuple[str, str], threading.Event] = {}
        self._futures: dict[tuple[str, str], Future[None]] = {}
        self._lock = threading.Lock()
        self._worker = f"{socket.gethostname()}:{os.getpid()}:inprocess"
        self.cancel_reason: str | None = None  # never set: in-process runs cancel through the executor

    def submit(self, requests: Sequence[DispatchRequest]) -> None:
        """Start one thread per attempt."""
        for request in requests:
            event = threading.Event()
            with self._lock:
                self._cancel_events[(request.task.name, request.token)] = event
            ctx = TaskContext(
                run_id=request.run_id,
                task=request.task.name,
                attempt=request.attempt,
                params=request.params,
                inputs=request.inputs,
                context=self._context,
                idempotency_key=idempotency_key(request.run_id, request.task.name),
                cancelled=event,
                item=request.item,
            )
            if is_async(self._functions[request.task.name][0]):
                future = aio.submit(self._arun(request, ctx))
                with self._lock:
                    if (request.task.name, request.token) in self._cancel_events:
                        self._futures[(request.task.name, request.token)] = future
                continue
            thread = threading.Thread(
                target=self._run,
                args=(request, ctx),
                name=f"rqdag-task-{request.task.name}",
                daemon=True,
            )
            thread.start()

    def _run(self, request: DispatchRequest, ctx: TaskContext) -> None:
        name = request.task.name
        func, condition = self._functions.get(name) or self._functions[parent_of(name) or name]
        with self._span(request) as span:
            attempt = invoke_attempt(func, ctx, condition=condition, **self._attempt_options(request))
            span.set_status(attempt.result.status.value)
        self._done(request, attempt)

    async def _arun(self, request: DispatchRequest, ctx: TaskContext) -> None:
        func, condition = self._functions[request.task.name]
        with self._span(request) as span:
            attempt = await ainvoke_attempt(func, ctx, condition=condition, **self._attempt_options(request))
            span.set_status(attempt.result.status.value)
        self._done(request, attempt)

    def _attempt_options(self, request: DispatchRequest) -> dict[str, Any]:
        """What an attempt is invoked with besides its function, context and condition."""
        task = request.task
        return {"worker": self._worker, "definition_hash": task.definition_hash(), "retry": task.retry}

    @contextmanager
    def _span(self, request: DispatchRequest) -> Iterator[Any]:
        with traces.attempt_span(
            run_id=request.run_id,
            workflow=self._workflow,
            task=request.task.name,
            attempt=request.attempt,
            worker=self._worker,
            parent=self._traceparent,
        ) as span:
            yield span

    def _done(self, request: DispatchRequest, attempt: Attempt) -> None:
        with self._lock:
            self._cancel_events.pop((request.task.name, request.token), None)
            self._futures.pop((request.task.name, request.token), None)
        completion = Completion(request.task.name, request.token, attempt.result, retryable=attempt.retryable)
        self._queue.put(completion)

    def collect(self) -> list[Completion]:
        """Drain the completions that arrived."""
        out, self._buffer = self._buffer, []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return out
            if item is not None:
                out.append(item)

    def wait(self, timeout: float, *, in_flight: int = 0) -> None:
        """Block until one completion arrives, wake() is called, or timeout (each arrives alone)."""
        if self._buffer:
            return
        try:
            item = self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return
        if item is not None:
            self._buffer.append(item)

    def wake(self) -> None:
        """Make wait() return now."""
        self._queue.put(None)

    def hold(self, task: str, seconds: float) -> float:
        """The timer of a wait or sleep starts now: all ``seconds`` are left."""
        return seconds

    def signal(self, task: str, result: TaskResult) -> None:
        """A signal for the wait ``task`` (from any thread): the loop applies it at its next step."""
        self._queue.put(Completion(task, "", result, CompletionKind.SIGNALLED))

    def start_child(self, task: str, workflow: Any, params: Any) -> None:
        """Child runs need Redis (the runner refuses a workflow with a subflow before it starts)."""
        raise RqdagError(f"subflow '{task}': child runs require Redis (TaskRunnerBuilder().with_redis(url))")

    def child_outcome(self, task: str) -> TaskResult | None:
        """Never: no child run starts in-process."""
        return None

    def cancel_child(self, task: str, reason: str) -> None:
        """Nothing to cancel: no child run starts in-process."""

    def abandon(self, task: str, token: str) -> None:
        """Set the attempt's ``ctx.cancelled`` (an async one is cancelled); its late result will be stale."""
        with self._lock:
            event = self._cancel_events.pop((task, token), None)
            future = self._futures.pop((task, token), None)
        if event is not None:
            event.set()
        if future is not None:
            future.cancel()

    def unstarted(self, tasks: Sequence[str]) -> set[str]:
        """None: a task handed to the pool counts as started."""
        return set()

    def record(self, results: Mapping[str, TaskResult]) -> None:
        """Nothing to persist: in-process state lives in the state manager."""

    def record_expansion(self, mapped: str, expansion: Expansion) -> None:
        """Nothing to persist: the children live in the state manager."""

    def fetch_results(self, names: Sequence[str]) -> dict[str, TaskResult]:
        """Nothing is stored elsewhere: the state manager has every result."""
        return {}

    def close(self) -> None:
        """Signal every attempt still running to stop."""
        with self._lock:
            events = list(self._cancel_events.values())
            futures = list(self._futures.values())
            self._cancel_events.clear()
            self._futures.clear()
        for event in events:
            event.set()
        for future in futures:
            future.cancel()
