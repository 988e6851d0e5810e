"""Mapped tasks in the state machine: expansion, aggregate, failures, snapshots, takeovers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rqdag import Retry, Task, TaskResult, TaskStatus, Workflow
from rqdag.coordinator.phases import STORED_SUCCESS, Phase
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.definition import decode_table, encode_definition
from rqdag.shared.model.mapping import Expansion, parent_of
from rqdag.shared.model.task_table import TaskTable
from tests.unit.tasks_for_tests import path_of


def noop(ctx: object) -> None:
    """Never called: the tests decide the outcomes."""


def key_of(item: Any) -> str:
    return str(item["id"]) if isinstance(item, dict) else str(item)


Outcome = Callable[[str, Any], TaskResult]


def succeed(name: str, item: Any) -> TaskResult:
    return TaskResult.success({"task": name, "item": item})


def drive(sm: TaskStateManager, outcome: Outcome = succeed, data: dict[str, Any] | None = None) -> list[str]:
    """Run every ready attempt to its end; the names started, in order."""
    data = data or {}
    started: list[str] = []
    for _ in range(10_000):
        batch = sm.take_ready(0.0, 1000)
        if not batch:
            break
        for d in batch:
            started.append(d.task.name)
            name = d.task.name
            result = TaskResult.success(data[name]) if name in data else outcome(name, d.item)
            sm.complete(name, d.token, result, 0.0)
    assert sm.is_finished(), "the run did not end"
    return started


def ingest(**map_options: Any) -> list[Task]:
    return [
        Task("list", noop),
        Task("load", noop, map_over="list", **map_options),
        Task("sum", noop, depends_on=["load"]),
    ]


def test_children_run_once_per_item_and_the_aggregate_keeps_item_order() -> None:
    sm = TaskStateManager(ingest(map_key=key_of, retry=Retry(attempts=2), priority=3))
    items = [{"id": "b"}, {"id": "a"}, {"id": "c"}]
    started = drive(sm, data={"list": items})
    assert started[:1] == ["list"] and sorted(started[1:4]) == ["load[a]", "load[b]", "load[c]"]
    assert sm.task("load[a]").retry.attempts == 2 and sm.task("load[a]").priority == 3
    assert sm.task("load[a]").map_over is None
    assert sm.task("load[a]").depends_on == ("list",)
    load = sm.result("load")
    assert load is not None and load.status is TaskStatus.SUCCESS
    assert load.data == [{"task": f"load[{k}]", "item": {"id": k}} for k in "bac"]
    assert sm.children_of("load") == ["load[b]", "load[a]", "load[c]"]
    snapshot = sm.snapshot()
    assert set(snapshot) == {"list", "load", "sum", "load[a]", "load[b]", "load[c]"}


def test_children_inherit_timeout_at_most_once_queue_and_condition() -> None:
    tasks = ingest(timeout_s=5.0, at_most_once=True, queue="gpu", condition=path_of("always_true"))
    sm = TaskStateManager(tasks)
    drive(sm, data={"list": ["x"]})
    child = sm.task("load[0]")
    assert (child.timeout_s, child.at_most_once, child.queue, child.condition) == (
        5.0,
        True,
        "gpu",
        path_of("always_true"),
    )


def test_children_see_their_item_and_the_sources_data() -> None:
    sm = TaskStateManager(ingest())
    [first] = sm.take_ready(0.0, 10)
    sm.complete("list", first.token, TaskResult.success(["x", "y"]), 0.0)
    batch = sm.take_ready(0.0, 10)
    assert [(d.task.name, d.item, d.inputs) for d in batch] == [
        ("load[0]", "x", {"list": ["x", "y"]}),
        ("load[1]", "y", {"list": ["x", "y"]}),
    ]
    assert sm.take_new_expansions() == [("load", Expansion(["0", "1"], ["x", "y"]))]


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        ({"a": 1}, {}, "map over 'list': its data is not a list (got dict)"),
        ([1, 2, 1], {"map_key": key_of}, "map over 'list': duplicate key '1' (items 0 and 2)"),
        ([1, 2, 3], {"max_items": 2}, "map over 'list': 3 items, more than max_items (2)"),
        ([None], {"map_key": lambda item: item}, "map over 'list': map_key returned None for item 0"),
        ([1], {"map_key": lambda item: 1 / 0}, "map over 'list': map_key raised ZeroDivisionError"),
    ],
)
def test_bad_source_data_fails_the_mapped_task_without_a_child(
    data: Any, options: dict[str, Any], message: str
) -> None:
    sm = TaskStateManager(ingest(**options))
    started = drive(sm, data={"list": data})
    assert started == ["list"]
    load = sm.result("load")
    assert load is not None and load.status is TaskStatus.FAILURE and load.message is not None
    assert load.message.startswith(message)
    assert sm.result("sum") == TaskResult.skipped("dependency 'load' failed")
    assert sm.take_new_expansions() == []


def test_an_empty_list_succeeds_with_an_empty_list() -> None:
    sm = TaskStateManager(ingest())
    assert drive(sm, data={"list": []}) == ["list", "sum"]
    load = sm.result("load")
    assert load is not None and load.status is TaskStatus.SUCCESS and load.data == []


def failing(*bad: str) -> Outcome:
    def outcome(name: str, item: Any) -> TaskResult:
        return TaskResult.failure(f"{name} broke") if name in bad else succeed(name, item)

    return outcome


def test_a_failed_child_fails_the_aggregate_naming_the_count_and_the_first() -> None:
    sm = TaskStateManager(ingest())
    drive(sm, failing("load[1]", "load[3]"), data={"list": [0, 1, 2, 3]})
    load = sm.result("load")
    assert load is not None and load.status is TaskStatus.FAILURE
    assert load.message == "2 of 4 children did not succeed (first: 'load[1]' failed: load[1] broke)"
    assert sm.result("sum") == TaskResult.skipped("dependency 'load' failed")


def test_continue_on_error_passes_the_successful_childrens_data_on() -> None:
    sm = TaskStateManager(ingest(continue_on_error=True))
    seen: dict[str, Any] = {}

    def outcome(name: str, item: Any) -> TaskResult:
        return failing("load[1]")(name, item)

    sm_list = sm.take_ready(0.0, 10)
    sm.complete("list", sm_list[0].token, TaskResult.success([0, 1, 2]), 0.0)
    for d in sm.take_ready(0.0, 10):
        sm.complete(d.task.name, d.token, outcome(d.task.name, d.item), 0.0)
    [summary] = sm.take_ready(0.0, 10)
    seen.update(summary.inputs)
    assert seen == {"load": [succeed("load[0]", 0).data, succeed("load[2]", 2).data]}


def test_a_map_over_a_mapped_task_maps_over_its_aggregate() -> None:
    tasks = [
        Task("list", noop),
        Task("load", noop, map_over="list"),
        Task("check", noop, map_over="load"),
    ]
    sm = TaskStateManager(tasks)
    started = drive(
        sm,
        lambda name, item: TaskResult.success(item * 10 if name.startswith("load") else item + 1),
        {"list": [1, 2]},
    )
    assert started == ["list", "load[0]", "load[1]", "check[0]", "check[1]"]
    check = sm.result("check")
    assert check is not None and check.data == [11, 21]


def test_hydrate_keeps_same_key_successes_and_runs_the_rest() -> None:
    snapshot = {
        "load[a]": TaskResult.success("kept a"),
        "load[b]": TaskResult.failure("b broke"),
        "load[gone]": TaskResult.success("no such key any more"),
    }
    sm = TaskStateManager(ingest(map_key=key_of))
    assert sm.hydrate(snapshot) == []
    assert sm.snapshot() == {"load[a]": snapshot["load[a]"], "load[gone]": snapshot["load[gone]"]}
    started = drive(sm, data={"list": ["c", "b", "a"]})
    assert started == ["list", "load[c]", "load[b]", "sum"]
    load = sm.result("load")
    assert load is not None and load.data == [
        succeed("load[c]", "c").data,
        succeed("load[b]", "b").data,
        "kept a",
    ]
    assert "load[gone]" not in sm.snapshot()


def test_a_successful_mapped_task_in_the_snapshot_keeps_its_children_and_runs_none() -> None:
    snapshot = {
        "list": TaskResult.success([1]),
        "load": TaskResult.success(["x"]),
        "load[0]": TaskResult.success("x"),
    }
    sm = TaskStateManager(ingest(), snapshot=snapshot)
    assert drive(sm) == ["sum"]
    assert {n: sm.snapshot()[n] for n in snapshot} == snapshot


def test_a_takeover_gets_stored_children_back_and_loads_unloaded_results_to_aggregate() -> None:
    workflow = Workflow("w", ingest())
    table = decode_table(encode_definition(workflow), run_id="r")
    assert table.mapped == {1}
    table.add_children(1, ["load[0]", "load[1]"], ["x", "y"])
    results = {"list": STORED_SUCCESS, "load[0]": STORED_SUCCESS}
    sm = TaskStateManager(table, snapshot=results, keep_all=True, track_timeouts=False)
    assert sm.phase("load") is Phase.MAPPED
    assert sm.take_new_expansions() == []  # nothing expands again
    [child] = sm.take_ready(0.0, 10)
    assert (child.task.name, child.item, child.task.func) == ("load[1]", "y", workflow.tasks[1].func_path)
    sm.complete("load[1]", child.token, TaskResult.success("Y"), 0.0)
    assert sm.take_gathers() == [("load", ["load[0]"])]
    sm.settle_map("load", {"load[0]": TaskResult.success("X")})
    load = sm.result("load")
    assert load is not None and load.data == ["X", "Y"]


def test_cancel_cancels_the_mapped_task_and_its_children() -> None:
    sm = TaskStateManager(ingest())
    [first] = sm.take_ready(0.0, 10)
    sm.complete("list", first.token, TaskResult.success([1, 2]), 0.0)
    sm.cancel_all("stop")
    snapshot = sm.snapshot()
    assert {snapshot[n].status for n in ("load", "load[0]", "load[1]", "sum")} == {TaskStatus.CANCELLED}
    assert sm.is_finished()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a[1]"}, "may not contain"),
        ({"map_over": "list", "max_items": 0}, "max_items must be an integer from 1 to 1,000,000"),
        ({"map_over": "list", "max_items": 1_000_001}, "max_items must be an integer from 1 to 1,000,000"),
        ({"map_key": key_of}, "map_key is given without map_over"),
    ],
)
def test_bad_map_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=message):
        Task(**{"name": "load", "func": noop, **kwargs})


def test_a_lambda_key_cannot_be_stored_but_a_path_can() -> None:
    with pytest.raises(WorkflowDefinitionError, match="map_key"):
        encode_definition(
            Workflow(
                "w",
                [
                    Task("list", path_of("answer")),
                    Task("m", path_of("answer"), map_over="list", map_key=lambda i: i),
                ],
            )
        )
    stored = Workflow(
        "w",
        [
            Task("list", path_of("answer")),
            Task("m", path_of("answer"), map_over="list", map_key=path_of("answer"), max_items=50),
        ],
    )
    table = decode_table(encode_definition(stored), run_id="r")
    assert (table.task(1).map_over, table.task(1).map_key, table.task(1).max_items) == (
        "list",
        path_of("answer"),
        50,
    )
    assert table.task(1).depends_on == ("list",)


def test_the_decorator_and_child_names() -> None:
    wf = Workflow("ingest")

    @wf.task()
    def list_partitions(ctx: object) -> list[str]:
        return []

    @wf.map("list_partitions", key=lambda item: item, max_items=10_000, retry=Retry(attempts=2))
    def load_partition(ctx: object) -> None: ...

    task = wf.tasks[1]
    assert (task.name, task.map_over, task.depends_on, task.retry.attempts) == (
        "load_partition",
        "list_partitions",
        ("list_partitions",),
        2,
    )
    assert parent_of("load_partition[2026-11-02]") == "load_partition" and parent_of("plain") is None
    assert TaskTable.of_tasks(wf.tasks).mapped == {1}


def test_a_resume_plan_keeps_successful_children_and_sets_the_others_aside() -> None:
    from rqdag.shared.model.resume_plan import plan_resume

    workflow = Workflow(
        "w", [Task("list", path_of("answer")), Task("load", path_of("answer"), map_over="list")]
    )
    results = {
        "list": TaskResult.success([1, 2]),
        "load": TaskResult.failure("1 of 2 children did not succeed"),
        "load[0]": TaskResult.success(1),
        "load[1]": TaskResult.failure("broke"),
        "other[0]": TaskResult.success(0),
    }
    plan = plan_resume(results, workflow, workflow)
    assert "load[0]" in plan.keep and "load[1]" in plan.rerun and "load" in plan.rerun
    assert plan.drop == ["other[0]"]
