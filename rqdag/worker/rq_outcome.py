"""What RQ records of an attempt, so that RQ's own tools (``rq info``, rq-dashboard) tell the truth.

rqdag's result (written by the finish step) is the authority; RQ's job status
only mirrors it. An attempt that ends ``failure``, whose result was refused
(too late: its token was no longer current) or that was cancelled raises
:class:`AttemptNotCompleted` to RQ *after* the finish step, so RQ fails the job
through its own failure path: it lands in RQ's FailedJobRegistry with the
reason, and RQ never retries it (rqdag jobs carry no RQ retries; rqdag retries
with a new attempt). Every other outcome returns normally: a success or a skip,
and the attempts that were not started because there was nothing to do (the
run is gone, the task already succeeded, the token is stale).
"""

from __future__ import annotations

import logging

from rqdag.shared.model.job import TaskJob
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.store.scripts import Start, StartOutcome

REFUSED = "refused"


class AttemptNotCompleted(Exception):  # a signal to RQ's failure path, not an rqdag error a caller sees
    """Raised to RQ by an attempt that did not complete: RQ marks its job failed with this message.

    ``outcome``: ``failure``, ``refused`` or ``cancelled``.
    """

    def __init__(self, spec: TaskJob, outcome: str, message: str) -> None:
        self.outcome = outcome
        self.where = f"run '{spec.run_id}', task '{spec.task}', attempt {spec.attempt}"
        self.message = message
        super().__init__(f"{self.where}: {outcome}: {message}")

    @property
    def log_level(self) -> int:
        """A cancellation is news; a failure or a refused result is a warning."""
        return logging.INFO if self.outcome == TaskStatus.CANCELLED.value else logging.WARNING


def after_finish(spec: TaskJob, outcome: str, result: TaskResult) -> str:
    """``outcome`` (what ``run_task`` returns), unless RQ must record the job as not completed."""
    if outcome == REFUSED:
        raise AttemptNotCompleted(
            spec,
            REFUSED,
            f"its result ({result.status.value}) came too late and was not written: token {spec.token} "
            "is no longer current (the coordinator had given up on this attempt)",
        )
    if result.status is TaskStatus.FAILURE:  # final or not: rqdag's retry is a new job
        raise AttemptNotCompleted(spec, outcome, _with_error(result))
    if result.status is TaskStatus.CANCELLED:
        raise AttemptNotCompleted(spec, outcome, result.message or "cancelled")
    return outcome


def completes(result: TaskResult) -> bool:
    """Whether RQ records the job of an attempt with this result (once written) as finished."""
    return result.status is not TaskStatus.FAILURE and result.status is not TaskStatus.CANCELLED


def not_started(spec: TaskJob, start: Start) -> str:
    """The outcome of an attempt that was not started; a cancelled run's is a cancelled job for RQ."""
    if start.outcome is StartOutcome.CANCELLED:
        raise AttemptNotCompleted(
            spec, start.outcome.value, f"not started: the run is being cancelled ({start.cancel_reason})"
        )
    return start.outcome.value


def _with_error(result: TaskResult) -> str:
    message = result.message or "failed"
    return f"{message}\n{result.error}" if result.error else message
