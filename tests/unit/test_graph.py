"""Graph checks, topological order and drawings."""

from __future__ import annotations

import sys

import pytest

from rqdag import Task, TaskResult, Workflow, to_dot, to_mermaid
from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.graph import find_cycle, topological_order, validate_graph

from . import tasks_for_tests

FUNC = tasks_for_tests.answer


def t(name: str, *deps: str) -> Task:
    return Task(name, FUNC, depends_on=deps)


def test_validate_graph_accepts_a_dag() -> None:
    validate_graph([t("a"), t("b", "a"), t("c", "a"), t("d", "b", "c")])


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([t("a"), t("a")], "duplicate task name 'a'"),
        ([t("a", "ghost")], "task 'a' depends on unknown task 'ghost'"),
        ([t("a", "a")], "task 'a' depends on itself"),
        ([t("a"), t("b", "a", "a")], "task 'b' lists a dependency twice"),
        ([t("a", "c"), t("b", "a"), t("c", "b")], "dependency cycle: a -> c -> b -> a"),
    ],
)
def test_validate_graph_errors(tasks: list[Task], message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=message):
        validate_graph(tasks)


def test_find_cycle_returns_the_cycle_path_only() -> None:
    deps = {"entry": ["x"], "x": ["y"], "y": ["z"], "z": ["x"]}
    assert find_cycle(deps) == ["x", "y", "z", "x"]
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None


def test_find_cycle_on_a_long_chain_does_not_recurse() -> None:
    n = sys.getrecursionlimit() * 5
    deps = {f"t{i}": [f"t{i + 1}"] for i in range(n)}
    deps[f"t{n}"] = []
    assert find_cycle(deps) is None
    deps[f"t{n}"] = ["t0"]
    cycle = find_cycle(deps)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert len(cycle) == n + 2


def test_topological_order_puts_dependencies_first_ties_in_definition_order() -> None:
    tasks = [
        t("report", "load", "extract"),
        t("extract"),
        t("load", "transform"),
        t("audit"),
        t("transform", "extract"),
    ]
    assert topological_order(tasks) == ["extract", "audit", "transform", "load", "report"]


def test_mermaid_of_a_workflow() -> None:
    wf = Workflow("w", [t("a"), t("b", "a"), t("c", "a", "b")])
    assert to_mermaid(wf) == (
        "flowchart TD\n"
        '    n_a["a"]\n'
        '    n_b["b"]\n'
        '    n_c["c"]\n'
        "    n_a --> n_b\n"
        "    n_a --> n_c\n"
        "    n_b --> n_c\n"
    )


def test_mermaid_colours_only_tasks_with_results() -> None:
    out = to_mermaid([t("a"), t("b", "a")], results={"a": TaskResult.success()})
    assert "    class n_a success" in out.splitlines()
    assert not any(line.strip().startswith("class n_b") for line in out.splitlines())
    assert "classDef success fill:#2e7d32" in out


def test_mermaid_escapes_odd_names() -> None:
    out = to_mermaid([t('load "raw" data'), t("next step", 'load "raw" data')])
    assert "[\"load 'raw' data\"]" in out
    assert "--> n_next_20_step" in out  # node ids encode odd characters injectively


def test_distinct_tasks_get_distinct_node_ids_in_drawings() -> None:
    tasks = [t("load-orders"), t("load_orders"), t("load.orders")]
    mermaid_nodes = [line.split("[")[0].strip() for line in to_mermaid(tasks).splitlines()[1:]]
    assert len(set(mermaid_nodes)) == 3, mermaid_nodes
    dot_nodes = [line.split("[")[0].strip() for line in to_dot(tasks).splitlines() if "label=" in line]
    assert len(set(dot_nodes)) == 3, dot_nodes


def test_dot_with_and_without_results() -> None:
    tasks = [t("a"), t("b", "a")]
    plain = to_dot(tasks)
    assert plain.startswith("digraph workflow {\n")
    assert "    n_a -> n_b;" in plain
    assert "fillcolor" not in plain
    coloured = to_dot(tasks, results={"b": TaskResult.failure("x")})
    assert 'n_b [label="b", style=filled, fillcolor="#c62828", fontcolor=white];' in coloured
    assert 'n_a [label="a"];' in coloured
