"""The RQ classes of an rqdag worker: its job class, death penalty and worker classes.

They are real RQ workers (``rq info`` lists them) with rqdag's defaults:

- RQ's JSON serializer: no pickle crosses Redis;
- only jobs of :data:`~rqdag.shared.model.job.RUN_TASK` run. Any other job (say an
  ``os.system`` job pushed into the queue by hand), or one whose data is not
  JSON, is failed through RQ's own failure path into its FailedJobRegistry:
  its function is never imported, let alone called;
- the worker's :class:`~rqdag.worker.environment.WorkerEnvironment` is bound
  around each job it performs;
- an attempt that did not complete (a failure, a refused late result, a
  cancellation) is failed through RQ's failure path once rqdag has recorded it
  (see :mod:`rqdag.worker.rq_outcome`), logged in one line, not as a traceback;
- RQ's job timeout is off (rqdag enforces ``timeout_s`` inside the job), while
  the forking worker keeps the periodic alarm with which it watches its horse
  (:mod:`.rq_timeouts`);
- a successful rqdag job's bookkeeping in RQ is one transaction (:mod:`.rq_success`);
- a warm stop gives each running task a grace period, then hands it back (:mod:`.grace`).

Building and starting one is :mod:`rqdag.worker.start`.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.worker import SimpleWorker, SpawnWorker, Worker

from rqdag.errors import RqdagError, TaskNotAllowedError
from rqdag.shared import metrics
from rqdag.shared.model.job import RUN_TASK
from rqdag.shared.model.job import TaskJob as TaskJobSpec
from rqdag.shared.store.workers import CurrentTask, WorkerRegistration
from rqdag.worker.environment import (
    WorkerEnvironment,
    WorkerSettings,
    bound_environment,
    build_environment,
)
from rqdag.worker.grace import arm_hand_back
from rqdag.worker.job import run_task
from rqdag.worker.rq_outcome import AttemptNotCompleted
from rqdag.worker.rq_success import LeanSuccess
from rqdag.worker.rq_timeouts import TaskJobTimeoutOff
from rqdag.worker.rqmemory import RidesOutFullRedis

log = logging.getLogger("rqdag.worker")


class TaskJob(Job):
    """An RQ job that resolves its function only when it is rqdag's task job.

    Any other function name resolves to an error, raised where RQ resolves
    ``job.func`` inside its perform step, so RQ fails the job the usual way; so
    does data that is not JSON, from the first access to the job's function name.
    """

    @property
    def func(self) -> Any:
        """:func:`~rqdag.worker.job.run_task`, or TaskNotAllowedError for any other function."""
        name = self.func_name
        if name != RUN_TASK or self.instance is not None:
            raise TaskNotAllowedError(
                f"job {self.id}: refused to run {name!r}: an rqdag worker runs only rqdag task jobs "
                f"({RUN_TASK}); this function was not imported"
            )
        return run_task

    def _deserialize_data(self) -> None:
        # RQ's own hook, extended only to say why (DeserializationError stays the type
        # RQ's failure path expects). The JSON serializer never loads a pickle.
        try:
            super()._deserialize_data()  # type: ignore[no-untyped-call]
        except DeserializationError as exc:
            raise DeserializationError(
                f"job {self.id}: refused: its data is not an RQ job in JSON (an rqdag worker reads "
                f"jobs with RQ's JSON serializer only, and runs only {RUN_TASK})"
            ) from exc.__cause__


class RqdagWorkerMixin(LeanSuccess, RidesOutFullRedis):
    """What rqdag adds to an RQ worker class: its job class, timeouts off, the environment,
    a cheaper heartbeat, a loop that waits out a full Redis, its entry in the worker registry."""

    job_class = TaskJob
    death_penalty_class = TaskJobTimeoutOff
    rqdag_settings: WorkerSettings | None = None
    rqdag_registration: WorkerRegistration | None = None
    _rqdag_environment: WorkerEnvironment | None = None
    _rqdag_current: CurrentTask | None = None
    _rqdag_beat: int | None = None

    def register_birth(self) -> None:
        """rqdag's registry entry (refreshed from the ticker thread), then RQ's registration.

        In that order, whoever sees the worker in RQ's registry finds it routable.
        """
        registration = self.rqdag_registration
        if registration is None or self.rqdag_settings is None:
            super().register_birth()  # type: ignore[no-untyped-call]
            return
        registration.publish()
        super().register_birth()  # type: ignore[no-untyped-call]
        interval = min(self.rqdag_settings.heartbeat_interval, registration.info.heartbeat_limit_s / 3)
        self._rqdag_beat = self.rqdag_environment().ticker.every(interval, self._publish_registration)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop; however it ends (a lost Redis too), the registry heartbeat stops with it."""
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            self._stop_registry_beat()

    def _stop_registry_beat(self) -> None:
        if self._rqdag_beat is not None:
            self.rqdag_environment().ticker.cancel(self._rqdag_beat)
            self._rqdag_beat = None

    def register_death(self) -> None:
        """Leave rqdag's registry at once, then RQ's."""
        registration = self.rqdag_registration
        self._stop_registry_beat()
        if registration is not None:
            try:
                registration.withdraw()
            except redis.RedisError as exc:
                log.warning("worker %s: could not leave the registry (%s); it lapses", self.name, exc)
        super().register_death()

    def _publish_registration(self) -> None:
        if self.rqdag_registration is None:
            return
        try:
            self.rqdag_registration.publish(self._rqdag_current)
        except redis.RedisError as exc:
            log.warning("worker %s: registry heartbeat failed (will try again): %s", self.name, exc)

    def registered_count(self) -> int:
        """How many task functions this worker may run."""
        return len(self.rqdag_environment().registry)

    def registered_summary(self, shown: int = 12) -> str:
        """``3 task functions: pkg.mod:a, pkg.mod:b, pkg.mod:c`` (the first ``shown`` named)."""
        names = sorted(self.rqdag_environment().registry.functions)
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        return f"{len(names)} task functions: {', '.join(names[:shown]) or 'none'}{more}"

    def rqdag_environment(self) -> WorkerEnvironment:
        """The environment of this process, built from ``rqdag_settings`` on first use."""
        if self._rqdag_environment is None:
            if self.rqdag_settings is None:
                raise RqdagError(f"worker {self.name}: no rqdag settings (start it with start_worker)")
            self._rqdag_environment = build_environment(self.rqdag_settings, self.connection, self.name)
        return self._rqdag_environment

    def perform_job(self, job: Job, queue: Any, execution: Any) -> bool:
        """Perform the job with the environment bound (refusals happen in :class:`TaskJob`)."""
        with bound_environment(self.rqdag_environment()):
            return bool(super().perform_job(job, queue, execution))

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """RQ's exception hook: an attempt that did not complete gets one line, what rqdag recorded.

        Any other exception (a job that is not rqdag's, a crash outside the task) keeps
        RQ's own handling: a traceback in the log and the exception handlers.
        """
        exc = exc_info[1] if len(exc_info) > 1 else None
        if not isinstance(exc, AttemptNotCompleted):
            super().handle_exception(job, *exc_info)
            return
        first_line = exc.message.splitlines()[0] if exc.message else ""
        self.log.log(
            exc.log_level,
            "Worker %s: job %s (%s) %s: %s; marked failed in RQ, not retried by RQ",
            self.name,
            job.id,
            exc.where,
            exc.outcome,
            first_line,
        )

    def execute_job(self, job: Job, queue: Any) -> None:
        """Run one job (in this process or a horse), counted as a busy slot meanwhile,
        its attempt noted as this worker's current task for the registry."""
        metrics.slot_busy(1)
        self._rqdag_current = _current_task(job)
        try:
            super().execute_job(job, queue)
        finally:
            self._rqdag_current = None
            metrics.slot_busy(-1)

    def request_stop(self, signum: Any, frame: Any) -> None:
        """Warm shutdown: each running task has ``shutdown_grace_s`` to finish, then it is handed back."""
        env = self.rqdag_environment()
        env.stopping.set()
        if self.rqdag_settings is not None:
            arm_hand_back(env, self.name, self.rqdag_settings.shutdown_grace_s, leave=self.register_death)
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def _current_task(job: Job) -> CurrentTask | None:
    """The attempt an rqdag job carries; None for any other job (it is refused anyway)."""
    try:
        if job.func_name != RUN_TASK:
            return None
        spec = TaskJobSpec.from_kwargs(job.kwargs)
    except (RqdagError, DeserializationError):
        return None
    return CurrentTask(spec.run_id, spec.task, spec.attempt, time.time())


class ForkTaskWorker(RqdagWorkerMixin, Worker):
    """rqdag's forking worker: one work horse process per job."""


class SpawnTaskWorker(RqdagWorkerMixin, SpawnWorker):
    """rqdag's spawning worker: one fresh interpreter per job (for where fork is unsafe)."""

    def _dump_worker_config(self) -> bytes:
        # RQ hands the worker's settings to the spawned horse in this local payload
        # (a command-line argument, never Redis); rqdag's settings travel with them.
        worker_class, attributes = pickle.loads(super()._dump_worker_config())
        attributes["rqdag_settings"] = self.rqdag_settings
        return pickle.dumps((worker_class, attributes))


class SimpleTaskWorker(RqdagWorkerMixin, SimpleWorker):
    """rqdag's default worker: jobs run in the worker process itself.

    RQ refreshes a simple worker's heartbeats only between jobs; this one also
    refreshes them while a long task runs, as the forking worker's monitor does.
    """

    def perform_job(self, job: Job, queue: Any, execution: Any) -> bool:
        """Perform the job while a thread keeps RQ's worker and job heartbeats."""
        with self._rq_heartbeats(job, execution):
            return super().perform_job(job, queue, execution)

    @contextmanager
    def _rq_heartbeats(self, job: Job, execution: Any) -> Iterator[None]:
        def beat() -> None:
            try:
                self.maintain_heartbeats(job, execution)
            except redis.RedisError as exc:
                self.log.warning("Worker %s: heartbeat failed: %s", self.name, exc)

        ticker = self.rqdag_environment().ticker
        handle = ticker.every(self.job_monitoring_interval, beat)
        try:
            yield
        finally:
            ticker.cancel(handle)
