"""Client and RunHandle: submit runs to Redis and follow them from anywhere."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from rqdag.errors import RedisOutOfMemoryError, RqdagError, RunNotFoundError, SnapshotError
from rqdag.shared import traces
from rqdag.shared.connect import connect
from rqdag.shared.episodes import describe
from rqdag.shared.model.codec import encode_result, normalize_snapshot
from rqdag.shared.model.limits import MAX_RESULT_BYTES
from rqdag.shared.model.params import check_params
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import FINISHED_RUN_STATUSES, EventKind, TaskStatus
from rqdag.shared.model.workflow import Workflow, as_workflow
from rqdag.shared.redis_memory import OUT_OF_MEMORY, is_out_of_memory
from rqdag.shared.store.keys import RunKeys, check_run_id
from rqdag.shared.store.records import RunMeta, parse_meta
from rqdag.shared.store.resume import resume_run
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.signals import signal_task

RUN_EVENT = EventKind.RUN.value.encode()  # the coordinator changed the run's status
FINISHED_EVENT_STATUSES = frozenset(status.value.encode() for status in FINISHED_RUN_STATUSES)
EMPTY_RUN_ID = "run id is empty: give a run id, or none at all for a new unique one"


def given_run_id(run_id: str) -> str:
    """``run_id`` if it is a valid run id; an empty one is refused, never replaced."""
    if run_id == "":
        raise RqdagError(EMPTY_RUN_ID)
    return check_run_id(run_id)


def check_seed_sizes(
    workflow: Workflow, snapshot: Mapping[str, TaskResult], limit: int = MAX_RESULT_BYTES
) -> None:
    """Refuse a seeded success larger than a worker may store (SnapshotError naming the task)."""
    names = {t.name for t in workflow.tasks}
    for name, result in snapshot.items():
        if name not in names or result.status is not TaskStatus.SUCCESS:
            continue  # not stored: create_run keeps only the successes of known tasks
        size = len(encode_result(result, what=f"snapshot entry '{name}'"))
        if size > limit:
            raise SnapshotError(
                f"snapshot entry '{name}': its result is {size} bytes, over the limit of {limit} "
                "bytes that workers apply to results (max_result_bytes)"
            )


@contextmanager
def refused_when_full(run_id: str, done: str = "submitted") -> Iterator[None]:
    """Turn Redis's refusal of a write when full into RedisOutOfMemoryError, in one line."""
    try:
        yield
    except redis.ResponseError as exc:
        if not is_out_of_memory(exc):
            raise
        raise RedisOutOfMemoryError(
            f"{OUT_OF_MEMORY}: run '{run_id}' was not {done} (nothing was written); free memory"
            f" in Redis or raise its maxmemory, then try again (Redis said: {describe(exc)})"
        ) from None


def new_run_id(workflow: str) -> str:
    """A unique, readable run id: ``<workflow>-<utc time>-<random>``."""
    safe = "".join(c if c.isalnum() or c in "_-." else "-" for c in workflow)[:60] or "run"
    return f"{safe}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


class RunHandle:
    """A submitted run: its status, its snapshot, waiting for it, cancelling it."""

    def __init__(self, client: redis.Redis, run_id: str, *, fresh: bool = False) -> None:
        """``fresh``: the run was stored just now (by ``submit``): it has no events yet and has not
        finished, so the first :meth:`wait` follows its events from the start without reading them."""
        self.connection = client
        self._client = client
        self._store = RunStore(client)
        self.run_id = run_id
        self._fresh = fresh

    def __repr__(self) -> str:
        return f"RunHandle({self.run_id!r})"

    def status(self) -> RunMeta:
        """The run's meta: status, epoch, params, timestamps..."""
        return self._store.read_meta(self.run_id)

    def snapshot(self) -> dict[str, TaskResult]:
        """The run's results so far: ``dict[str, TaskResult]``."""
        return self._store.read_results(self.run_id)

    def cancel(self, reason: str = "cancelled by request") -> None:
        """Ask the coordinator to cancel the run."""
        self._store.request_cancel(self.run_id, reason)

    def signal(
        self,
        task: str,
        *,
        data: Any = None,
        status: TaskStatus | str = TaskStatus.SUCCESS,
        reason: str | None = None,
        who: str | None = None,
    ) -> dict[str, Any]:
        """Send a signal to the wait ``task``: ``success`` with ``data``, or ``failure``
        with ``reason``; returns the signal as stored (see :func:`Client.signal`)."""
        return signal_task(
            self._store, self.run_id, task, status=TaskStatus(status), data=data, reason=reason, who=who
        )

    def wait(self, timeout: float | None = None, poll_s: float = 0.5) -> dict[str, TaskResult]:
        """Block until the run has finished; returns its results.

        It blocks on the run's events stream: the coordinator records each change
        of the run's status there (a ``run`` event, written with the status in one
        step), so the event that says the run finished is followed by one read, of
        its results. The status is also read at least every ``poll_s``. Raises
        TimeoutError when ``timeout`` seconds pass first. A run that is blocked on
        an operator's decision keeps this waiting.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        events = RunKeys(self.run_id).events
        fresh, self._fresh = self._fresh, False
        while True:
            if fresh:  # stored just now: no event yet, so every one appended is read
                fresh, last = False, b"0-0"
            else:
                finished, last = self._finished_and_last_event()
                if finished:
                    return self._store.read_snapshot(self.run_id)
            while True:  # from the entry read with the status: an event appended since is never missed
                block_s = poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
                if block_s <= 0:
                    raise TimeoutError(f"run '{self.run_id}' did not finish within {timeout}s")
                reply: Any = self._client.xread({events: last}, count=100, block=max(int(block_s * 1000), 1))
                entries = [entry for _stream, found in reply or [] for entry in found]
                if not entries:
                    break  # a poll: read the status
                said = [f.get(b"status") for _id, f in entries if f.get(b"kind") == RUN_EVENT]
                if said and said[-1] in FINISHED_EVENT_STATUSES:
                    return self._store.read_snapshot(self.run_id)
                last = entries[-1][0]

    def _finished_and_last_event(self) -> tuple[bool, bytes]:
        """Whether the run has finished, and the id of its newest event, in one round trip."""
        rk = RunKeys(self.run_id)
        with self._client.pipeline(transaction=False) as pipe:
            pipe.xrevrange(rk.events, count=1)
            pipe.hgetall(rk.meta)
            newest, raw = pipe.execute()
        if not raw:
            raise RunNotFoundError(f"no run '{self.run_id}'")
        last: bytes = newest[0][0] if newest else b"0-0"
        return parse_meta(self.run_id, raw).finished, last


class Client:
    """Submits workflows to Redis; coordinators and workers do the rest.

    >>> client = Client("redis://localhost:6379/0")
    >>> run = client.submit(nightly, params={"date": "2026-11-28"})
    >>> run.wait(timeout=3600)
    """

    def __init__(self, url: str | None = None, *, connection: redis.Redis | None = None) -> None:
        self.connection = connection or connect(url)
        self._store = RunStore(self.connection)

    def submit(
        self,
        workflow: Workflow | Iterable[Task],
        *,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        snapshot: Mapping[str, TaskResult | Mapping[str, Any]] | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,
        heartbeat_timeout_s: float = 30.0,
        resume: bool = False,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ) -> RunHandle:
        """Store a new run and return its handle.

        With ``resume=True`` an existing run of that id is continued instead of
        refused: left as it is while it is open, resumed in a new epoch once it
        has finished (``params`` then change those parameters from that epoch
        on). ``snapshot`` seeds the run: its successes are not run again, and
        none may be larger than ``max_result_bytes`` (the workers' limit).
        ``params`` is a mapping of name to JSON value (no NaN or Infinity).
        """
        flow = as_workflow(workflow)
        run_id = new_run_id(flow.name) if run_id is None else given_run_id(run_id)
        params = check_params(params)
        if resume and self._store.exists(run_id):
            if self._store.read_meta(run_id).finished:
                with refused_when_full(run_id, "resumed"):
                    return self.resume(run_id, workflow=flow, params=params)
            return RunHandle(self.connection, run_id)  # still open: its coordinator goes on
        seeded = normalize_snapshot(snapshot or {}, source="snapshot")
        check_seed_sizes(flow, seeded, max_result_bytes)
        with refused_when_full(run_id):
            self._store.create_run(
                flow,
                run_id=run_id,
                params=params,
                snapshot=seeded,
                concurrency=concurrency,
                timeout_s=timeout,
                heartbeat_timeout_s=heartbeat_timeout_s,
                traceparent=traces.current_traceparent(),
                announce=True,
            )
        return RunHandle(self.connection, run_id, fresh=True)

    def run(self, run_id: str) -> RunHandle:
        """The handle of an existing run."""
        if not self._store.exists(run_id):
            raise RunNotFoundError(f"no run '{run_id}'")
        return RunHandle(self.connection, run_id)

    def signal(
        self,
        run_id: str,
        task: str,
        *,
        data: Any = None,
        status: TaskStatus | str = TaskStatus.SUCCESS,
        reason: str | None = None,
        who: str | None = None,
    ) -> dict[str, Any]:
        """Send a signal to the wait ``task`` of run ``run_id``.

        ``success`` completes the wait with ``data`` (JSON); ``failure`` fails it
        with ``reason``. A signal sent before the wait is reached is kept and used
        when it is. Recorded in the run's audit stream (who, when, data). Raises
        RqdagError when the task is not a wait, or has finished already.
        """
        return self.run(run_id).signal(task, data=data, status=status, reason=reason, who=who)

    def runs(self, limit: int = 50) -> list[RunMeta]:
        """The newest runs first."""
        return self._store.list_runs(limit)

    def resume(
        self,
        run_id: str,
        *,
        workflow: Workflow | None = None,
        keep_changed: bool = False,
        params: Mapping[str, Any] | None = None,
        rerun: Sequence[str] = (),
    ) -> RunHandle:
        """Start a new epoch of a finished run: successes stay, everything else runs again.

        A success whose task changed (its code as the workers run it now, or as
        ``workflow`` has it; its settings; its dependencies) runs again with what
        depends on it, unless ``keep_changed``. ``params`` change those
        parameters from this epoch on; ``rerun`` names tasks to run again, with
        everything downstream of them. A run that succeeded and has nothing to
        run again is left as it is (``rqdag resume RUN --plan`` shows the plan).
        """
        resume_run(
            self._store, run_id, workflow=workflow, keep_changed=keep_changed, params=params, rerun=rerun
        )
        return RunHandle(self.connection, run_id)
