"""The retry budget in the state machine: every lost attempt counts, whatever the cause, and the
count lives on in the dispatch entries across a coordinator that takes the run over."""

from __future__ import annotations

import pytest

from rqdag.coordinator.phases import Dispatch, Outcome
from rqdag.coordinator.reconcile import restore_in_flight
from rqdag.coordinator.state import TaskStateManager
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Retry, Task
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.records import DispatchEntry, RunState, parse_dispatch_entry


def noop(ctx: object) -> None:
    """Never called."""


def one(sm: TaskStateManager, now: float = 0.0) -> Dispatch:
    (dispatch,) = sm.take_ready(now, 10)
    return dispatch


def gone() -> TaskResult:
    return TaskResult.failure("worker w lost while the task ran")


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_hand_backs_count_like_losses(retries: int) -> None:
    sm = TaskStateManager([Task("a", noop, retry=Retry(attempts=retries))])
    starts = 0
    while sm.result("a") is None:
        dispatch = one(sm, float(starts))
        starts += 1
        sm.hand_back("a", dispatch.token, gone(), float(starts))
    assert starts == 1 + max(retries, 1)


def test_each_dispatch_carries_the_failures_so_far() -> None:
    sm = TaskStateManager([Task("a", noop, retry=Retry(attempts=3))])
    first = one(sm)
    assert first.failures == 0 and first.retry_of is None
    assert sm.complete("a", first.token, TaskResult.failure("boom"), 0.0) is Outcome.RETRY
    second = one(sm, 1.0)
    assert second.failures == 1 and second.retry_of == first.token  # its worker wrote that failure
    assert sm.complete("a", second.token, gone(), 1.0, lost=True) is Outcome.RETRY
    third = one(sm, 2.0)
    assert third.failures == 2 and third.retry_of is None  # a loss: nothing of its worker was written
    assert sm.requeue("a", third.token)  # never started: no failure
    assert one(sm, 3.0).failures == 2


def test_a_coordinator_taking_over_counts_on_from_the_dispatch_entry() -> None:
    tasks = [Task("a", noop)]  # no retries: one loss is forgiven, the second is final
    first = TaskStateManager(tasks)
    attempt = one(first)
    assert first.complete("a", attempt.token, gone(), 0.0, lost=True) is Outcome.RETRY
    second = one(first, 1.0)
    entry = DispatchEntry(2, second.token, "job-2", AttemptState.RUNNING, failures=second.failures)
    stored = parse_dispatch_entry("r", "a", entry.to_json())
    assert stored.failures == 1
    successor = TaskStateManager(tasks)
    restore_in_flight(successor, RunState(dispatch={"a": stored}), "r", 2.0)
    assert successor.complete("a", second.token, gone(), 3.0, lost=True) is Outcome.DONE
    assert successor.result("a") is not None


def test_an_entry_written_before_failures_were_kept_counts_every_earlier_attempt() -> None:
    raw = b'{"attempt": 3, "token": "3-x", "job_id": "j", "state": "running"}'
    assert parse_dispatch_entry("r", "a", raw).failures == 2


def test_a_failure_found_final_by_its_worker_is_not_retried() -> None:
    sm = TaskStateManager([Task("a", noop, retry=Retry(attempts=3, on=(ConnectionError,)))])
    attempt = one(sm)
    outcome = sm.complete("a", attempt.token, TaskResult.failure("ValueError"), 0.0, retryable=False)
    assert outcome is Outcome.DONE
