"""The public surface: ``rqdag.__all__`` is exactly what we mean to export, and all of it imports."""

from __future__ import annotations

import rqdag

EXPECTED = {
    "Client",
    "Retry",
    "RqdagError",
    "RqdagWarning",
    "RunHandle",
    "Task",
    "TaskContext",
    "TaskMetrics",
    "TaskResult",
    "TaskRunner",
    "TaskRunnerBuilder",
    "TaskStatus",
    "Workflow",
    "load_snapshot",
    "save_snapshot",
    "to_dot",
    "to_mermaid",
}


def test_all_is_the_expected_set() -> None:
    assert set(rqdag.__all__) == EXPECTED
    assert len(rqdag.__all__) == len(EXPECTED), "no name listed twice"


def test_every_exported_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from rqdag import *", namespace)
    for name in rqdag.__all__:
        assert getattr(rqdag, name) is namespace[name]
        assert getattr(rqdag, name).__module__.startswith("rqdag"), name


def test_exported_classes_and_functions_are_documented() -> None:
    for name in rqdag.__all__:
        assert getattr(rqdag, name).__doc__, f"rqdag.{name} has no docstring"


def test_the_error_root_and_warning() -> None:
    assert issubclass(rqdag.RqdagError, Exception)
    assert issubclass(rqdag.RqdagWarning, UserWarning)
