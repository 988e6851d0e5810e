"""Graph checks (names, dependencies, cycles) and drawings (Mermaid, Graphviz dot)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskStatus

K = TypeVar("K")
K_contra = TypeVar("K_contra", contravariant=True)


class Counts(Protocol[K_contra]):
    """Counts by node: a dict by name, or a list by index."""

    def __getitem__(self, key: K_contra, /) -> int: ...

    def __setitem__(self, key: K_contra, value: int, /) -> None: ...


STATUS_COLOURS = {
    TaskStatus.SUCCESS: "#2e7d32",
    TaskStatus.FAILURE: "#c62828",
    TaskStatus.SKIPPED: "#9e9e9e",
    TaskStatus.CANCELLED: "#ef6c00",
}


def validate_graph(tasks: Sequence[Task]) -> None:
    """Raise WorkflowDefinitionError for duplicate names, unknown or self dependencies, cycles."""
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise WorkflowDefinitionError(f"duplicate task name '{task.name}'")
        seen.add(task.name)
    for task in tasks:
        for dep in task.depends_on:
            if dep == task.name:
                raise WorkflowDefinitionError(f"task '{task.name}' depends on itself")
            if dep not in seen:
                raise WorkflowDefinitionError(f"task '{task.name}' depends on unknown task '{dep}'")
        if len(set(task.depends_on)) != len(task.depends_on):
            raise WorkflowDefinitionError(f"task '{task.name}' lists a dependency twice")
    cycle = find_cycle({t.name: t.depends_on for t in tasks})
    if cycle:
        raise WorkflowDefinitionError("dependency cycle: " + " -> ".join(cycle))


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a path that starts and ends on the same name, or None.

    Kahn's count-down answers the usual case (no cycle) quickly; only when it
    leaves tasks over does an iterative depth-first search (deep chains do not
    hit the recursion limit) find the path to show.
    """
    if _acyclic(deps):
        return None
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    for root in deps:
        if state.get(root):
            continue
        path: list[str] = [root]
        iters = [iter(deps[root])]
        state[root] = 1
        while iters:
            child = next(iters[-1], None)
            if child is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            mark = state.get(child)
            if mark == 1:
                return [*path[path.index(child) :], child]
            if mark is None:
                state[child] = 1
                path.append(child)
                iters.append(iter(deps.get(child, ())))
    return None


def _acyclic(deps: Mapping[str, Sequence[str]]) -> bool:
    remaining = dict.fromkeys(deps, 0)
    dependents: dict[str, list[str]] = {}
    for name, names in deps.items():
        for dep in names:
            if dep in remaining:
                remaining[name] += 1
                dependents.setdefault(dep, []).append(name)
    frontier = [name for name, left in remaining.items() if left == 0]
    return count_down(frontier, remaining, lambda name: dependents.get(name, ())) == len(remaining)


def count_down(frontier: list[K], remaining: Counts[K], dependents: Callable[[K], Iterable[K]]) -> int:
    """Kahn's count-down: how many nodes become free from ``frontier`` (all of them iff no cycle).

    ``remaining`` holds each node's count of unfinished dependencies and is used up.
    """
    done = 0
    while frontier:
        node = frontier.pop()
        done += 1
        for child in dependents(node):
            remaining[child] -= 1
            if remaining[child] == 0:
                frontier.append(child)
    return done


def topological_order(tasks: Sequence[Task]) -> list[str]:
    """Task names, every task after its dependencies, ties in definition order."""
    remaining = {t.name: len(t.depends_on) for t in tasks}
    dependents: dict[str, list[str]] = {t.name: [] for t in tasks}
    for t in tasks:
        for dep in t.depends_on:
            dependents[dep].append(t.name)
    frontier = deque(t.name for t in tasks if not t.depends_on)
    order: list[str] = []
    while frontier:
        name = frontier.popleft()
        order.append(name)
        for child in dependents[name]:
            remaining[child] -= 1
            if remaining[child] == 0:
                frontier.append(child)
    return order


def _node_id(name: str) -> str:
    # Injective: every character outside [A-Za-z0-9], '_' included, becomes _<hex>_.
    return "n_" + "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):x}_" for c in name)


def to_mermaid(
    tasks: Iterable[Task],
    results: Mapping[str, TaskResult] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A Mermaid flowchart of a Workflow (or tasks), coloured by status when results are given
    (``labels``: a node's text instead of its name, such as a mapped task's counts)."""
    tasks = list(tasks)
    lines = ["flowchart TD"]
    for task in tasks:
        label = (labels or {}).get(task.name, task.name).replace('"', "'")
        lines.append(f'    {_node_id(task.name)}["{label}"]')
    for task in tasks:
        for dep in task.depends_on:
            lines.append(f"    {_node_id(dep)} --> {_node_id(task.name)}")
    if results:
        for status, colour in STATUS_COLOURS.items():
            lines.append(f"    classDef {status.value} fill:{colour},color:#fff")
        for task in tasks:
            result = results.get(task.name)
            if result is not None:
                lines.append(f"    class {_node_id(task.name)} {result.status.value}")
    return "\n".join(lines) + "\n"


def to_dot(
    tasks: Iterable[Task],
    results: Mapping[str, TaskResult] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A Graphviz dot digraph of a Workflow (or tasks), coloured by status when results are given
    (``labels`` as :func:`to_mermaid`)."""
    tasks = list(tasks)
    lines = ["digraph workflow {", "    rankdir=TB;"]
    for task in tasks:
        label = (labels or {}).get(task.name, task.name).replace('"', '\\"')
        result = results.get(task.name) if results else None
        style = ""
        if result is not None:
            style = f', style=filled, fillcolor="{STATUS_COLOURS[result.status]}", fontcolor=white'
        lines.append(f'    {_node_id(task.name)} [label="{label}"{style}];')
    for task in tasks:
        for dep in task.depends_on:
            lines.append(f"    {_node_id(dep)} -> {_node_id(task.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
