"""The boundary between the executor loop and a backend that runs tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from rqdag.shared.model.mapping import Expansion
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.workflow import Workflow


@dataclass(frozen=True)
class DispatchRequest:
    """One attempt of one task, ready to run."""

    run_id: str
    task: Task
    attempt: int
    token: str
    inputs: Mapping[str, Any]
    params: Mapping[str, Any]
    item: Any = None  # a mapped task's child: its item
    mapped_inputs: tuple[str, ...] = ()  # dependencies that are mapped tasks (a failure's data is passed on)
    lazy_inputs: tuple[str, ...] = ()  # a child's source: its data is read only when the task reads it
    failures: int = 0  # failed or lost attempts before this one (see phases.Dispatch)
    retry_of: str | None = None  # token of the attempt whose failure this one retries


class CompletionKind(StrEnum):
    """How an attempt came to an end, which decides what the state machine does with it."""

    FINISHED = "finished"  # the task ran and this is its result (final, or a retry follows)
    LOST = "lost"  # the attempt's worker vanished (no heartbeat): see TaskStateManager.complete
    RESOLVED = "resolved"  # an operator recorded this result (rqdag resolve); no token
    HANDED_BACK = "handed_back"  # the worker stopped before the task ended and gave it back
    UNSTARTED = "unstarted"  # the job left its queue but never started: safe to send again
    SIGNALLED = "signalled"  # a signal for a wait task (rqdag signal); no token
    CHILD_ENDED = "child_ended"  # the child run of a subflow task ended: read its outcome; no token


@dataclass(frozen=True)
class Completion:
    """The result of one attempt, tagged with the token it was dispatched with.

    ``retryable`` False: whoever ran it found the failure final whatever the retries
    left (its exception is not one its ``Retry(on=...)`` lists, say).
    """

    task: str
    token: str
    result: TaskResult
    kind: CompletionKind = CompletionKind.FINISHED
    retryable: bool = True


class Dispatcher(Protocol):
    """A backend: runs dispatched attempts and reports their completions."""

    def submit(self, requests: Sequence[DispatchRequest]) -> None:
        """Start these attempts (one batch: a backend may send them in one round trip)."""

    def collect(self) -> list[Completion]:
        """Completions that arrived since the last call, without blocking."""

    @property
    def cancel_reason(self) -> str | None:
        """A cancel request that came through the backend (noted by :meth:`collect`), or None."""

    def wait(self, timeout: float, *, in_flight: int) -> None:
        """Block until a completion may be available, :meth:`wake` is called, or timeout.

        ``in_flight``: how many attempts are out; a backend may linger a moment to
        collect a batch of completions when many are.
        """

    def wake(self) -> None:
        """Make a pending :meth:`wait` return now (thread-safe)."""

    def hold(self, task: str, seconds: float) -> float:
        """Start the timer of a wait or sleep reached now; returns the seconds left until it fires.

        A backend that stores timers (Redis) returns what is left of one it
        stored before (a restarted coordinator does not start a sleep over).
        """

    def start_child(self, task: str, workflow: Workflow, params: Any) -> None:
        """Start the child run of subflow ``task`` (idempotent: one that exists is left to go on)."""

    def child_outcome(self, task: str) -> TaskResult | None:
        """The result the child run of subflow ``task`` gives it, or None while it runs."""

    def cancel_child(self, task: str, reason: str) -> None:
        """Ask the child run of subflow ``task`` to stop."""

    def abandon(self, task: str, token: str) -> None:
        """Give up on an attempt (timed out or cancelled): tell it to stop."""

    def unstarted(self, tasks: Sequence[str]) -> set[str]:
        """Those of ``tasks`` (in flight) whose attempt no worker has started yet."""

    def record(self, results: Mapping[str, TaskResult]) -> None:
        """Persist results the coordinator decided itself (skips, cancels, time-outs)."""

    def record_expansion(self, mapped: str, expansion: Expansion) -> None:
        """Persist a mapped task's children before any of them is dispatched."""

    def fetch_results(self, names: Sequence[str]) -> dict[str, TaskResult]:
        """The stored results of ``names`` (children whose data the state did not load)."""

    def close(self) -> None:
        """Release resources."""
