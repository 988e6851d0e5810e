"""``Retry(on=...)``: the exceptions that mean "nothing happened", and the at-most-once rule.

An at-most-once task is never started again after an attempt that started, unless that
attempt raised one of the exception types its retry lists in ``on``; any other exception is a
final failure. A definition with ``at_most_once=True`` and a retry without ``on=`` is refused.
"""

from __future__ import annotations

import pytest

from rqdag import Retry, Task, TaskContext, TaskRunnerBuilder, TaskStatus, Workflow
from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.definition import decode_definition, encode_definition

from . import tasks_for_tests


class GatewayDown(ConnectionRefusedError):
    """A subclass of a listed type counts as listed (isinstance)."""


def raising(first: type[Exception], calls: list[int]) -> object:
    def task(ctx: TaskContext) -> int:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise first("attempt 1")
        return ctx.attempt

    return task


def test_at_most_once_with_a_retry_without_on_is_refused_naming_the_task() -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"'charge'.*at_most_once.*on="):
        Task("charge", tasks_for_tests.answer, at_most_once=True, retry=Retry(attempts=3))
    flow = Workflow("w")
    with pytest.raises(WorkflowDefinitionError, match="'charge_cards'"):

        @flow.task(retry=Retry(attempts=1, delay_s=0.5), at_most_once=True)
        def charge_cards(ctx: TaskContext) -> None: ...

    Task("ok", tasks_for_tests.answer, at_most_once=True)  # no retry at all: allowed
    guarded = Retry(attempts=2, on=(ConnectionRefusedError,))
    Task("ok", tasks_for_tests.answer, at_most_once=True, retry=guarded)


def test_on_takes_exception_types_or_their_names_and_refuses_anything_else() -> None:
    assert Retry(attempts=1, on=(ConnectionRefusedError,)).on == ("builtins:ConnectionRefusedError",)
    assert Retry(attempts=1, on=ConnectionRefusedError).on == ("builtins:ConnectionRefusedError",)
    assert Retry(attempts=1, on=("ConnectionRefusedError", "pkg.mod:Err")).on == (
        "builtins:ConnectionRefusedError",
        "pkg.mod:Err",
    )
    for bad in ((int,), ("",), (42,), ("not a name",)):
        with pytest.raises(WorkflowDefinitionError, match=r"retry\.on"):
            Retry(attempts=1, on=bad)  # type: ignore[arg-type]


def test_on_is_stored_in_the_definition_and_changes_the_hash() -> None:
    retry = Retry(attempts=2, on=(ConnectionRefusedError, GatewayDown))
    flow = Workflow("w", [Task("t", tasks_for_tests.answer, retry=retry, at_most_once=True)])
    back = decode_definition(encode_definition(flow), run_id="r")
    assert back.tasks[0].retry == retry
    plain = Task("t", tasks_for_tests.answer, retry=Retry(attempts=2))
    assert plain.definition_hash() != Task("t", tasks_for_tests.answer, retry=retry).definition_hash()


@pytest.mark.parametrize(
    ("first", "starts", "status"),
    [
        (ConnectionRefusedError, [1, 2], TaskStatus.SUCCESS),  # listed: nothing happened, try again
        (GatewayDown, [1, 2], TaskStatus.SUCCESS),  # a subclass of a listed type
        (ValueError, [1], TaskStatus.FAILURE),  # anything else: final
    ],
)
def test_in_process_an_at_most_once_task_runs_again_only_after_a_listed_exception(
    first: type[Exception], starts: list[int], status: TaskStatus
) -> None:
    calls: list[int] = []
    retry = Retry(attempts=3, on=(ConnectionRefusedError,))
    task = Task("charge", raising(first, calls), retry=retry, at_most_once=True)
    results = TaskRunnerBuilder().build().execute([task])
    assert calls == starts
    assert results["charge"].status is status


def test_in_process_on_limits_the_retries_of_an_at_least_once_task_too() -> None:
    calls: list[int] = []
    task = Task("fetch", raising(ValueError, calls), retry=Retry(attempts=3, on=(ConnectionError,)))
    results = TaskRunnerBuilder().build().execute([task])
    assert calls == [1] and results["fetch"].status is TaskStatus.FAILURE
    calls.clear()
    task = Task("fetch", raising(ConnectionResetError, calls), retry=Retry(attempts=3, on=(ConnectionError,)))
    assert TaskRunnerBuilder().build().execute([task])["fetch"].status is TaskStatus.SUCCESS
    assert calls == [1, 2]
