"""The model: statuses, results, metrics, retry policy, task definitions, import paths."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rqdag import Retry, Task, TaskMetrics, TaskResult, TaskStatus, Workflow
from rqdag.errors import ImportPathError, SnapshotError
from rqdag.shared.model.importing import callable_path, resolve_attribute, resolve_path
from rqdag.shared.model.workflow import as_workflow

from . import tasks_for_tests


def test_statuses_are_strings_that_read_the_same_everywhere() -> None:
    assert [s.value for s in TaskStatus] == ["success", "failure", "skipped", "cancelled"]
    assert TaskStatus("success") is TaskStatus.SUCCESS
    assert str(TaskStatus.SKIPPED) == "skipped"
    assert json.dumps(TaskStatus.FAILURE) == '"failure"'


def full_result() -> TaskResult:
    return TaskResult(
        TaskStatus.FAILURE,
        message="ValueError: x",
        error="Traceback...",
        data={"partial": [1, 2]},
        metrics=TaskMetrics(started_at=10.0, finished_at=12.5, duration_s=2.5, attempt=2, worker="host:1"),
        definition_hash="abc123",
    )


def test_result_round_trips_through_a_plain_dict_and_json() -> None:
    result = full_result()
    raw = result.to_dict()
    assert raw == {
        "status": "failure",
        "message": "ValueError: x",
        "error": "Traceback...",
        "data": {"partial": [1, 2]},
        "metrics": {
            "started_at": 10.0,
            "finished_at": 12.5,
            "duration_s": 2.5,
            "attempt": 2,
            "worker": "host:1",
        },
        "definition_hash": "abc123",
    }
    assert TaskResult.from_dict(raw) == result
    assert TaskResult.from_dict(json.loads(json.dumps(raw))) == result


def test_result_from_a_minimal_dict() -> None:
    assert TaskResult.from_dict({"status": "skipped"}) == TaskResult(TaskStatus.SKIPPED)
    assert TaskResult.from_dict({"status": "success", "metrics": None}).metrics == TaskMetrics()
    assert TaskResult.from_dict({"status": "success", "metrics": {"started_at": 3}}).metrics.started_at == 3.0


def test_result_constructors() -> None:
    assert TaskResult.success([1]) == TaskResult(TaskStatus.SUCCESS, data=[1])
    assert TaskResult.failure("m", "tb") == TaskResult(TaskStatus.FAILURE, message="m", error="tb")
    assert TaskResult.skipped("s") == TaskResult(TaskStatus.SKIPPED, message="s")
    assert TaskResult.cancelled("c") == TaskResult(TaskStatus.CANCELLED, message="c")


def test_result_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TaskResult.success().status = TaskStatus.FAILURE  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"status": "done"}, "unknown status 'done'"),
        ({}, "unknown status None"),
        ("success", "a result must be an object, got str"),
        ({"status": "success", "message": 5}, "field 'message' must be a string"),
        ({"status": "success", "error": ["x"]}, "field 'error' must be a string"),
        ({"status": "success", "definition_hash": 1}, "field 'definition_hash' must be a string"),
        ({"status": "success", "metrics": []}, "field 'metrics' must be an object"),
        ({"status": "success", "metrics": {"attempt": "2"}}, "field 'metrics.attempt' must be an integer"),
        ({"status": "success", "metrics": {"attempt": True}}, "field 'metrics.attempt' must be an integer"),
        (
            {"status": "success", "metrics": {"started_at": "now"}},
            "field 'metrics.started_at' must be a number",
        ),
        (
            {"status": "success", "metrics": {"duration_s": False}},
            "field 'metrics.duration_s' must be a number",
        ),
        ({"status": "success", "metrics": {"worker": 3}}, "field 'metrics.worker' must be a string"),
    ],
)
def test_result_from_dict_names_the_bad_field(raw: object, match: str) -> None:
    with pytest.raises(SnapshotError, match=match):
        TaskResult.from_dict(raw)


def test_unknown_status_message_lists_the_known_ones() -> None:
    with pytest.raises(SnapshotError, match="success, failure, skipped, cancelled"):
        TaskResult.from_dict({"status": "SUCCESS"})


# ---- retry policy -------------------------------------------------------------------------------


def test_retry_defaults_to_no_retry() -> None:
    assert Retry() == Retry(attempts=0, delay_s=0.0, backoff="fixed", max_delay_s=None)


@pytest.mark.parametrize(
    ("retry", "delays"),
    [
        (Retry(attempts=3, delay_s=2.0), [2.0, 2.0, 2.0]),
        (Retry(attempts=4, delay_s=0.5, backoff="exponential"), [0.5, 1.0, 2.0, 4.0]),
        (Retry(attempts=4, delay_s=1.0, backoff="exponential", max_delay_s=3.0), [1.0, 2.0, 3.0, 3.0]),
        (Retry(attempts=2, delay_s=5.0, max_delay_s=1.0), [1.0, 1.0]),
        (Retry(attempts=2), [0.0, 0.0]),
    ],
)
def test_retry_delays(retry: Retry, delays: list[float]) -> None:
    assert [retry.delay_before(n) for n in range(1, retry.attempts + 1)] == delays


def test_retry_to_dict() -> None:
    assert Retry(2, 0.5, "exponential", 9.0).to_dict() == {
        "attempts": 2,
        "delay_s": 0.5,
        "backoff": "exponential",
        "max_delay_s": 9.0,
    }


# ---- tasks ---------------------------------------------------------------------------------------


def test_task_normalises_depends_on() -> None:
    assert Task("b", tasks_for_tests.answer, depends_on="a").depends_on == ("a",)
    assert Task("c", tasks_for_tests.answer, depends_on=["a", "b"]).depends_on == ("a", "b")


def test_func_path_of_importable_functions_and_of_closures() -> None:
    def local(ctx: object) -> None: ...

    path = tasks_for_tests.path_of("answer")
    assert Task("a", tasks_for_tests.answer).func_path == path
    assert Task("a", path).func_path == path
    assert Task("a", local).func_path is None
    assert Task("a", lambda ctx: None).func_path is None
    assert Task("a", local, condition=tasks_for_tests.always_true).condition_path == tasks_for_tests.path_of(
        "always_true"
    )
    assert Task("a", local, condition=lambda ctx: True).condition_path is None
    assert Task("a", local).condition_path is None


def test_definition_hash_tracks_what_the_task_does_not_its_priority() -> None:
    base = Task("a", tasks_for_tests.answer, depends_on=["x"], retry=Retry(1), timeout_s=5.0)
    same = dataclasses.replace(base, priority=99)
    assert base.definition_hash() == same.definition_hash()
    # the function by path, with its code's identity as a stored definition carries it
    by_path = Task("a", tasks_for_tests.path_of("answer"), ["x"], Retry(1), 5.0, code_hash=base.code_id)
    assert base.definition_hash() == by_path.definition_hash()
    changed = [
        dataclasses.replace(base, func=tasks_for_tests.describe),
        dataclasses.replace(base, depends_on=("x", "y")),
        dataclasses.replace(base, retry=Retry(2)),
        dataclasses.replace(base, timeout_s=6.0),
        dataclasses.replace(base, condition=tasks_for_tests.always_true),
        dataclasses.replace(base, continue_on_error=True),
        dataclasses.replace(base, queue="gpu"),
        dataclasses.replace(base, at_most_once=True, retry=Retry(1, on=(ConnectionRefusedError,))),
        dataclasses.replace(base, retry=Retry(1, on=(ConnectionRefusedError,))),
    ]
    hashes = {t.definition_hash() for t in changed}
    assert len(hashes) == len(changed)
    assert base.definition_hash() not in hashes


def test_workflow_collects_tasks_in_order_and_hashes_them() -> None:
    wf = Workflow("w")

    @wf.task(priority=3)
    def first(ctx: object) -> None: ...

    @wf.task(name="second", depends_on=["first"], retry=Retry(1))
    def whatever(ctx: object) -> None: ...

    assert [t.name for t in wf] == ["first", "second"]
    assert len(wf) == 2
    assert wf.tasks[0].priority == 3
    assert wf.tasks[1].retry == Retry(1)
    assert set(wf.definition_hashes()) == {"first", "second"}
    assert repr(wf) == "Workflow('w', 2 tasks)"
    assert whatever.__name__ == "whatever", "the decorator returns the function itself"


def test_as_workflow_accepts_a_workflow_or_a_list() -> None:
    wf = Workflow("w", [Task("a", tasks_for_tests.answer)])
    assert as_workflow(wf) is wf
    built = as_workflow([Task("a", tasks_for_tests.answer)])
    assert [t.name for t in built] == ["a"]


# ---- import paths --------------------------------------------------------------------------------


def test_resolve_path_and_callable_path_are_inverse() -> None:
    path = tasks_for_tests.path_of("describe")
    assert resolve_path(path) is tasks_for_tests.describe
    assert callable_path(tasks_for_tests.describe) == path
    assert resolve_attribute(tasks_for_tests.path_of("NOT_CALLABLE")) == 42
    assert callable_path(print) == "builtins:print"


def test_resolve_path_errors_name_what_and_path() -> None:
    with pytest.raises(ImportPathError, match=r"task 'x': func 'nope' is not of the form"):
        resolve_path("nope", what="task 'x': func")
    with pytest.raises(ImportPathError, match="names int, not a callable"):
        resolve_path(tasks_for_tests.path_of("NOT_CALLABLE"))
