"""The stored definition: compact rows and shared profiles, checked by index, errors that name the task."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rqdag import Retry, Task, Workflow
from rqdag.errors import DecodeError
from rqdag.shared.model.definition import decode_definition, decode_table, encode_definition, task_to_dict
from tests.unit.tasks_for_tests import always_true, answer, path_of


def sample() -> Workflow:
    return Workflow(
        "sample",
        [
            Task("a", answer),
            Task("b", answer, depends_on=["a"], retry=Retry(2, delay_s=0.5, backoff="exponential")),
            Task("c", path_of("add_inputs"), depends_on=["a", "b"], priority=3, queue="gpu", timeout_s=9.0),
            Task(
                "d",
                answer,
                depends_on=["c"],
                condition=always_true,
                at_most_once=True,
                continue_on_error=True,
            ),
        ],
    )


def stored(workflow: Workflow) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(encode_definition(workflow))
    return document


def decoded(document: dict[str, Any]) -> Workflow:
    return decode_definition(orjson.dumps(document), run_id="r1")


def test_round_trip_keeps_every_field_and_the_hash() -> None:
    original = sample()
    back = decoded(stored(original))
    assert back.name == "sample"
    assert [task_to_dict(t) for t in back.tasks] == [task_to_dict(t) for t in original.tasks]
    assert [t.definition_hash() for t in back.tasks] == [t.definition_hash() for t in original.tasks]


def test_tasks_alike_share_one_profile() -> None:
    wide = Workflow(
        "wide", [Task("root", answer)] + [Task(f"t{i}", answer, depends_on=["root"]) for i in range(50)]
    )
    document = stored(wide)
    assert document["format"] == 3
    assert len(document["profiles"]) == 1
    assert document["tasks"][3] == ["t2", 0, [0]]


def test_a_definition_of_format_1_is_still_read() -> None:
    original = sample()
    legacy = {"format": 1, "name": "sample", "tasks": [task_to_dict(t) for t in original.tasks]}
    back = decoded(legacy)
    assert [task_to_dict(t) for t in back.tasks] == [task_to_dict(t) for t in original.tasks]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["tasks"].__setitem__(1, ["b", 0]), r"tasks\[1\] must be \[name, profile"),
        (lambda d: d["tasks"][1].__setitem__(0, "  "), r"tasks\[1\]: a task name must be a non-empty string"),
        (lambda d: d["tasks"][1].__setitem__(0, "a"), r"tasks\[1\]: duplicate task name 'a'"),
        (lambda d: d["tasks"][2].__setitem__(1, 7), r"tasks\[2\] \('c'\): profile 7 does not exist"),
        (lambda d: d["tasks"][2].__setitem__(1, True), r"tasks\[2\] \('c'\): profile True does not exist"),
        (lambda d: d["tasks"][2].__setitem__(2, "a"), r"tasks\[2\] \('c'\): dependencies must be a list"),
        (
            lambda d: d["tasks"][2].__setitem__(2, [0, 99]),
            r"tasks\[2\] \('c'\): dependency 99 is not a task index",
        ),
        (
            lambda d: d["tasks"][2].__setitem__(2, [0, "b"]),
            r"tasks\[2\] \('c'\): dependency 'b' is not a task",
        ),
        (lambda d: d["tasks"][2].__setitem__(2, [2]), r"tasks\[2\]: task 'c' depends on itself"),
        (lambda d: d["tasks"][2].__setitem__(2, [0, 0]), r"tasks\[2\]: task 'c' lists a dependency twice"),
        (lambda d: d["tasks"][0].__setitem__(2, [3]), r"dependency cycle: (a|b|c|d) -> .* -> \1"),
        (
            lambda d: d["profiles"][0].__setitem__("timeout_s", -1),
            r"profiles\[0\]: task 'profile': timeout_s must be > 0",
        ),
        (
            lambda d: d["profiles"][0].__setitem__("retry", {"attempts": "x"}),
            r"profiles\[0\]: retry.attempts",
        ),
        (lambda d: d["profiles"][0].pop("func"), r"profiles\[0\]: field 'func' is missing"),
        (lambda d: d.__setitem__("profiles", {}), r"field 'profiles' must be a list"),
        (lambda d: d.__setitem__("format", 4), r"field 'format' is 4; this rqdag reads formats 1 to 3"),
        (
            lambda d: d["profiles"][0].__setitem__("code", 5),
            r"profiles\[0\]: field 'code' must be a string or null",
        ),
    ],
)
def test_bad_definitions_are_reported_with_the_run_and_the_task(change: Any, message: str) -> None:
    document = stored(sample())
    change(document)
    with pytest.raises(DecodeError, match=r"run 'r1': definition: .*" + message):
        decoded(document)


def test_a_made_task_is_the_task_the_constructor_builds() -> None:
    settings = {
        "func": path_of("answer"),
        "retry": Retry(1, on=(ConnectionRefusedError,)),
        "timeout_s": 3.0,
        "condition": None,
        "priority": 2,
        "continue_on_error": True,
        "queue": "gpu",
        "at_most_once": True,
    }
    made = Task.maker(settings)("x", ("a", "b"))
    built = Task("x", depends_on=("a", "b"), **settings)
    assert made == built and hash(made) == hash(built)
    assert made.definition_hash() == built.definition_hash()
    with pytest.raises(AttributeError):
        made.name = "y"  # type: ignore[misc]


def test_rows_stored_out_of_dependency_order_are_accepted() -> None:
    # rqdag writes tasks in the order they were added, which need not follow the graph
    workflow = Workflow("late", [Task("b", answer, depends_on=["a"]), Task("a", answer)])
    document = stored(workflow)
    assert document["tasks"][0] == ["b", 0, [1]]
    back = decoded(document)
    assert [task_to_dict(t) for t in back.tasks] == [task_to_dict(t) for t in workflow.tasks]
    table = decode_table(orjson.dumps(document), run_id="r1")
    assert table.index == {"b": 0, "a": 1} and table.deps == [[1], []]


def test_the_table_a_coordinator_loads_holds_the_graph_and_makes_each_task_on_demand() -> None:
    original = sample()
    table = decode_table(encode_definition(original), run_id="r1")
    assert table.names == ["a", "b", "c", "d"]
    assert table.index == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert table.deps == [[], [0], [0, 1], [2]]
    assert table.priorities == [0, 0, 3, 0]
    made = table.task(2)
    assert task_to_dict(made) == task_to_dict(original.tasks[2])
    assert table.task(2) is made, "a task is made once, then kept"
    assert [task_to_dict(t) for t in table.tasks()] == [task_to_dict(t) for t in original.tasks]
