"""A mapped task on the run page, without Redis: one node for its children, with their counts."""

from __future__ import annotations

from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.records import DispatchEntry
from rqdag.web.layout import layout
from rqdag.web.mapped import drawn_rows, mapped_nodes

TASKS = {
    "partitions": Task("partitions", "m:partitions"),
    "load": Task("load", "m:load", map_over="partitions"),
    "summarize": Task("summarize", "m:summarize", depends_on=["load"]),
}


def running(attempt: int = 1) -> DispatchEntry:
    """An attempt a worker runs now."""
    return DispatchEntry(attempt=attempt, token="t", job_id="j", state=AttemptState.RUNNING)


def test_a_mapped_task_is_one_node_with_its_childrens_counts() -> None:
    results = {"partitions": TaskResult.success(["a", "b", "c", "d"])}
    results |= {f"load[{k}]": TaskResult.success(k) for k in "ab"}
    dispatch = {"load[c]": running()}
    nodes = mapped_nodes(TASKS, results, dispatch, {"load": 4})
    assert nodes == {
        "load": {"counts": "2/4", "line": "2/4 success, 1 running, 1 pending", "status": "running"}
    }
    rows = [
        {"task": n, "depends_on": list(TASKS[n].depends_on) if n in TASKS else []}
        for n in ["partitions", "load", "summarize", "load[a]", "load[b]", "load[c]"]
    ]
    drawn = drawn_rows(rows, nodes)
    assert [r["task"] for r in drawn] == ["partitions", "load", "summarize"]
    drawing = layout({r["task"]: r["depends_on"] for r in drawn}, [r["task"] for r in drawn])
    assert sorted(n.name for n in drawing.nodes) == ["load", "partitions", "summarize"]
    assert sorted((e.source, e.target) for e in drawing.edges) == [
        ("load", "summarize"),
        ("partitions", "load"),
    ]


def test_a_mapped_node_takes_its_aggregates_status_and_is_pending_before_its_children() -> None:
    assert mapped_nodes(TASKS, {}, {}, {}) == {"load": {"counts": "", "line": "", "status": "pending"}}
    results = {f"load[{k}]": TaskResult.success(k) for k in "ab"}
    results["load[c]"] = TaskResult.failure("broken")
    results["load"] = TaskResult.failure("1 of 3 children failed")
    [node] = mapped_nodes(TASKS, results, {}, {"load": 3}).values()
    assert node == {"counts": "2/3", "line": "2/3 success, 1 failure", "status": "failure"}
