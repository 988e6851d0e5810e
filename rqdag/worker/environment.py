"""What a task job needs from the worker running it, bound for the length of a job.

The worker class binds a :class:`WorkerEnvironment` in a ContextVar around each
job it performs; :func:`current_environment` finds it from inside the job.
Outside an rqdag worker there is none, so a plain RQ worker that dequeues an
rqdag job fails it with a clear error instead of running it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import redis

from rqdag.errors import RqdagError
from rqdag.shared.model.limits import MAX_RESULT_BYTES
from rqdag.shared.model.task_logs import LogLimits
from rqdag.shared.store.code import publish_code
from rqdag.shared.store.scripts import Scripts
from rqdag.worker.capture import LogShipper
from rqdag.worker.combine import SlotSteps
from rqdag.worker.context import ContextHolder, load_context
from rqdag.worker.heartbeat import HeartbeatRound
from rqdag.worker.registry import TaskRegistry, build_registry
from rqdag.worker.rq_finish import rq_worker
from rqdag.worker.ticker import Ticker

DEFAULT_HEARTBEAT_INTERVAL = 5.0
DEFAULT_MAX_RESULT_BYTES = MAX_RESULT_BYTES
DEFAULT_SHUTDOWN_GRACE_S = 30.0


Attempt = tuple[str, str, str]  # (run_id, task, token)


class CurrentAttempt:
    """The attempts this process is running now, one per slot (read by the shutdown timer).

    A slot is the thread that performs the job: :meth:`set` and :meth:`clear`
    are called from it. The lock is reentrant: the SIGTERM handler reads the
    attempts in the main thread, which may be inside :meth:`set` at that moment.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_slot: dict[int, Attempt] = {}

    def set(self, run_id: str, task: str, token: str) -> None:
        """Record the attempt this slot runs."""
        with self._lock:
            self._by_slot[threading.get_ident()] = (run_id, task, token)

    def clear(self) -> None:
        """This slot runs no attempt any more."""
        with self._lock:
            self._by_slot.pop(threading.get_ident(), None)

    def get(self) -> Attempt | None:
        """``(run_id, task, token)`` of a running attempt (the only one of a one-slot worker), or None."""
        with self._lock:
            return next(iter(self._by_slot.values()), None)

    def all(self) -> list[Attempt]:
        """Every running attempt."""
        with self._lock:
            return list(self._by_slot.values())


@dataclass(frozen=True)
class WorkerSettings:
    """The plain, picklable settings from which a process builds its environment."""

    tasks: tuple[str, ...]
    context: str | None = None
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    heartbeat_timeout_s: float | None = None  # this worker's own limit, over the run's
    log_limits: LogLimits = field(default_factory=LogLimits)  # its tasks' output kept (capture)
    concurrency: int = 1  # slots: tasks one process runs at once

    def __post_init__(self) -> None:
        tasks = (self.tasks,) if isinstance(self.tasks, str) else tuple(self.tasks)
        if not tasks:
            raise RqdagError("a worker needs at least one --tasks module")
        object.__setattr__(self, "tasks", tasks)
        if not self.heartbeat_interval > 0:
            raise RqdagError(f"heartbeat_interval must be > 0, got {self.heartbeat_interval!r}")
        if not isinstance(self.max_result_bytes, int) or self.max_result_bytes <= 0:
            raise RqdagError(f"max_result_bytes must be an integer > 0, got {self.max_result_bytes!r}")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise RqdagError(f"concurrency must be an integer >= 1, got {self.concurrency!r}")


@dataclass(frozen=True)
class WorkerEnvironment:
    """Everything :func:`rqdag.worker.job.run_task` uses besides the job's own fields."""

    registry: TaskRegistry
    context: ContextHolder
    worker_name: str
    heartbeat_interval: float
    max_result_bytes: int
    heartbeat_timeout_s: float | None
    connection: redis.Redis
    scripts: Scripts
    logs: LogShipper
    slots: int = 1
    current: CurrentAttempt = field(default_factory=CurrentAttempt)
    ticker: Ticker = field(default_factory=Ticker)
    beats: HeartbeatRound | None = None  # a concurrent worker's: all slots beat in one round trip
    steps: SlotSteps | None = None  # a concurrent worker's: slots' starts and finishes combined
    # set when the worker is asked to stop: a start step that cannot reach Redis is given up
    stopping: threading.Event = field(default_factory=threading.Event)


def build_environment(
    settings: WorkerSettings, connection: redis.Redis, worker_name: str
) -> WorkerEnvironment:
    """Import the ``--tasks`` modules, resolve the ``--context`` factory, register the scripts,
    and publish the code identity of every function this worker may run (for resumes)."""
    scripts = Scripts.register(connection)
    ticker = Ticker()
    beats, steps = None, None
    if settings.concurrency > 1:
        beats = HeartbeatRound(scripts, connection, settings.heartbeat_interval, ticker)
        steps = SlotSteps(scripts, connection, rq_worker(worker_name))
    environment = WorkerEnvironment(
        registry=build_registry(settings.tasks),
        context=load_context(settings.context),
        worker_name=worker_name,
        heartbeat_interval=settings.heartbeat_interval,
        max_result_bytes=settings.max_result_bytes,
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
        connection=connection,
        scripts=scripts,
        logs=LogShipper(connection, scripts.append_logs, settings.log_limits, ticker),
        slots=settings.concurrency,
        ticker=ticker,
        beats=beats,
        steps=steps,
    )
    publish_code(connection, environment.registry.functions)
    return environment


_CURRENT: ContextVar[WorkerEnvironment | None] = ContextVar("rqdag_worker_environment", default=None)


def current_environment() -> WorkerEnvironment:
    """The environment of the job being performed; raises RqdagError outside an rqdag worker."""
    env = _CURRENT.get()
    if env is None:
        raise RqdagError(
            "rqdag task jobs run only inside an rqdag worker (start one with `rqdag worker --tasks ...`)"
        )
    return env


@contextmanager
def bound_environment(env: WorkerEnvironment) -> Iterator[WorkerEnvironment]:
    """Make ``env`` the current environment inside the ``with`` block."""
    token = _CURRENT.set(env)
    try:
        yield env
    finally:
        _CURRENT.reset(token)
