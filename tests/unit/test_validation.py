"""Bad input: each a clear rqdag.errors exception raised before any task runs, naming the culprit."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rqdag import Retry, Task, TaskContext, TaskRunnerBuilder, Workflow, load_snapshot
from rqdag.errors import ImportPathError, RqdagError, SnapshotError, WorkflowDefinitionError

from . import tasks_for_tests


class Spy:
    """A task function that must never be called."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, ctx: TaskContext) -> None:
        with self._lock:
            self.calls += 1


@pytest.fixture
def spy() -> Spy:
    return Spy()


def execute(tasks: list[Task] | Workflow) -> None:
    TaskRunnerBuilder().build().execute(tasks)


def test_duplicate_task_names(spy: Spy) -> None:
    with pytest.raises(WorkflowDefinitionError, match="duplicate task name 'extract'"):
        execute([Task("extract", spy), Task("load", spy), Task("extract", spy)])
    assert spy.calls == 0


def test_duplicate_task_names_in_a_workflow_decorator() -> None:
    wf = Workflow("etl")

    @wf.task(name="step")
    def one(ctx: TaskContext) -> None: ...

    with pytest.raises(WorkflowDefinitionError, match=r"workflow 'etl': duplicate task name 'step'"):

        @wf.task(name="step")
        def two(ctx: TaskContext) -> None: ...


def test_unknown_dependency(spy: Spy) -> None:
    with pytest.raises(WorkflowDefinitionError, match="task 'load' depends on unknown task 'transfrom'"):
        execute([Task("extract", spy), Task("transform", spy, ["extract"]), Task("load", spy, ["transfrom"])])
    assert spy.calls == 0


def test_cycle_shows_its_path(spy: Spy) -> None:
    tasks = [Task("start", spy), Task("a", spy, ["b", "start"]), Task("b", spy, ["c"]), Task("c", spy, ["a"])]
    with pytest.raises(WorkflowDefinitionError, match="a -> b -> c -> a"):
        execute(tasks)
    assert spy.calls == 0


def test_cycle_in_a_workflow_names_the_workflow(spy: Spy) -> None:
    wf = Workflow("loop", [Task("x", spy, ["y"]), Task("y", spy, ["x"])])
    with pytest.raises(WorkflowDefinitionError, match=r"workflow 'loop': dependency cycle: x -> y -> x"):
        execute(wf)
    assert spy.calls == 0


def test_self_dependency(spy: Spy) -> None:
    with pytest.raises(WorkflowDefinitionError, match="task 'again' depends on itself"):
        execute([Task("ok", spy), Task("again", spy, ["again"])])
    assert spy.calls == 0


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        (tasks_for_tests.path_of("no_such_function"), "has no attribute 'no_such_function'"),
        ("rqdag_no_such_module.tasks:run", "cannot import module 'rqdag_no_such_module.tasks'"),
        ("no colon here", "is not of the form"),
        (tasks_for_tests.path_of("NOT_CALLABLE"), "not a callable"),
    ],
)
def test_a_func_import_path_that_does_not_resolve_names_the_task(spy: Spy, path: str, detail: str) -> None:
    with pytest.raises(ImportPathError) as info:
        execute([Task("fine", spy), Task("broken_step", path)])
    message = str(info.value)
    assert "task 'broken_step'" in message
    assert repr(path) in message
    assert detail in message
    assert spy.calls == 0


def test_a_condition_import_path_that_does_not_resolve_names_the_task(spy: Spy) -> None:
    bad = tasks_for_tests.path_of("missing_predicate")
    with pytest.raises(ImportPathError, match=r"task 'gated': condition") as info:
        execute([Task("fine", spy), Task("gated", spy, condition=bad)])
    assert bad in str(info.value)
    assert spy.calls == 0


def test_import_path_errors_are_definition_errors() -> None:
    assert issubclass(ImportPathError, WorkflowDefinitionError)
    assert issubclass(WorkflowDefinitionError, RqdagError)
    assert issubclass(SnapshotError, RqdagError)


def test_a_list_with_something_that_is_not_a_task(spy: Spy) -> None:
    with pytest.raises(WorkflowDefinitionError, match="'not a task'"):
        execute([Task("a", spy), "not a task"])  # type: ignore[list-item]
    assert spy.calls == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "non-empty"),
        ({"name": "t", "func": 42}, "task 't': func must be a callable or an import path"),
        ({"name": "t", "timeout_s": 0}, "task 't': timeout_s must be > 0"),
        ({"name": "t", "depends_on": ["a", 3]}, "task 't': depends_on entries must be task names"),
        ({"name": "t", "retry": 3}, "task 't': retry must be a rqdag.Retry"),
    ],
)
def test_bad_task_fields(kwargs: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {"func": tasks_for_tests.answer, **kwargs}
    with pytest.raises(WorkflowDefinitionError, match=match):
        Task(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attempts": -1}, "retry.attempts"),
        ({"attempts": 1.5}, "retry.attempts"),
        ({"delay_s": -0.1}, "retry.delay_s"),
        ({"backoff": "linear"}, "retry.backoff"),
    ],
)
def test_bad_retry_fields(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=match):
        Retry(**kwargs)  # type: ignore[arg-type]


def test_bad_workflow_name() -> None:
    with pytest.raises(WorkflowDefinitionError, match="workflow name"):
        Workflow("  ")


# ---- snapshot files ----------------------------------------------------------------------------


def test_a_snapshot_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.snapshot.json"
    path.write_text('{"a": {"status": "success"')
    with pytest.raises(SnapshotError, match="not valid JSON") as info:
        load_snapshot(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["[1, 2, 3]", '"success"', "42", "null"])
def test_a_json_file_that_is_not_a_snapshot_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(SnapshotError, match="not a snapshot") as info:
        load_snapshot(path)
    assert str(path) in str(info.value)


def test_a_snapshot_entry_with_an_unknown_status(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_text('{"version": 1, "results": {"load": {"status": "finished"}}}')
    with pytest.raises(SnapshotError) as info:
        load_snapshot(path)
    message = str(info.value)
    assert str(path) in message
    assert "task 'load'" in message
    assert "unknown status 'finished'" in message


def test_a_missing_snapshot_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"
    with pytest.raises(SnapshotError, match="cannot read snapshot") as info:
        load_snapshot(path)
    assert str(path) in str(info.value)


def test_a_snapshot_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.json"
    path.write_text('{"version": 99, "results": {}}')
    with pytest.raises(SnapshotError, match="version 99 is not supported"):
        load_snapshot(path)
