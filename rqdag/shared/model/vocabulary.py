"""Every status, attempt state and event kind rqdag writes or reads, as ``str`` enums.

The values read the same in Redis, JSON and Python (a member *is* its string),
and the Lua scripts spell the same words: ``tests/unit/test_vocabulary.py``
checks every one they write against these enums.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Terminal status of a task; the values read the same in Redis, JSON and Python."""

    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class TaskKind(StrEnum):
    """What completes a task: a worker, or the coordinator (a signal, a timer)."""

    TASK = "task"  # a function a worker runs
    WAIT = "wait"  # a signal completes it (``rqdag signal``), or its deadline fails it
    SLEEP = "sleep"  # it succeeds when its time has passed (Redis time)
    SUBFLOW = "subflow"  # a child run of another workflow; it ends with the child's outcome


class RunStatus(StrEnum):
    """A run's status, in its meta hash (``rqdag:run:{R}:meta`` field ``status``)."""

    PENDING = "pending"  # submitted (or resumed), no coordinator has started it yet
    RUNNING = "running"
    BLOCKED = "blocked"  # waits for an operator: an in-doubt task needs ``rqdag resolve``
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ERROR = "error"  # the run could not be read; left for an operator


# the statuses a run ends in
FINISHED_RUN_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.ERROR}
)


class AttemptState(StrEnum):
    """Where an attempt in flight stands, in its dispatch entry (field ``state``)."""

    QUEUED = "queued"  # its RQ job is enqueued; no worker started it yet
    RUNNING = "running"  # a worker started it and sends heartbeats
    RETRY_WAIT = "retry_wait"  # it failed; the next attempt waits for its delay
    HANDED_BACK = "handed_back"  # its worker shut down and gave it back: send it again
    LOST = "lost"  # its worker went silent: voided, counts as a failed attempt
    VANISHED = "vanished"  # its job left the queue but never started: voided, sent again


class EventKind(StrEnum):
    """The ``kind`` field of an entry of a run's events stream (``rqdag:run:{R}:events``)."""

    STARTED = "started"  # a worker started an attempt (start_task)
    FINISHED = "finished"  # a worker wrote a final result (finish_task)
    RETRY = "retry"  # a worker's attempt failed and a retry follows (finish_task)
    REFUSED = "refused"  # a late answer with a token no longer current, not written
    HANDBACK = "handback"  # a worker shutting down gave its attempt back (hand_back)
    LOST = "lost"  # the coordinator voided a running attempt whose worker went silent
    VANISHED = "vanished"  # the coordinator voided a queued attempt that never started
    DECIDED = "decided"  # the coordinator recorded a result itself: skip, cancel, time-out
    RUN = "run"  # the run's status changed (set_run_status); carries ``status``
    RESOLVED = "resolved"  # an operator recorded a task's result (``rqdag resolve``)
    RESUME = "resume"  # ``rqdag resume`` started a new epoch; carries ``epoch``
    SIGNAL = "signal"  # a signal for a wait task arrived (``rqdag signal``); carries ``task``
    CHILD = "child"  # a child run of a subflow task ended (its driver wrote it); carries ``task``
    CANCEL = "cancel"  # an operator asked for the run to be cancelled (request_cancel)


class AuditKind(StrEnum):
    """The ``kind`` of an entry of a run's audit stream (``rqdag:run:{R}:audit``)."""

    RESOLVE = "resolve"  # an operator replaced a task's result
    RESUME = "resume"  # a resume set a result aside
    CANCEL = "cancel"  # an operator asked for the run to be cancelled (the dashboard)
    RESUMED = "resumed"  # an operator started the run's next epoch (the dashboard)
    SIGNAL = "signal"  # a signal for a wait task (``rqdag signal``): who, when, its data


class RunEventKind(StrEnum):
    """What in-process listeners (``TaskRunnerBuilder.on``) are told about a run."""

    WORKFLOW_START = "workflow_start"
    TASK_START = "task_start"
    TASK_END = "task_end"
    TASK_SKIPPED = "task_skipped"
    TASK_RETRY = "task_retry"
    WORKFLOW_END = "workflow_end"


class LogStream(StrEnum):
    """Where a line of a run's logs stream (``rqdag:run:{R}:logs``) came from (field ``stream``)."""

    LOG = "log"  # a ``logging`` record
    STDOUT = "stdout"
    STDERR = "stderr"
    TRUNCATED = "truncated"  # the worker's mark: the rest of the attempt's output was dropped
