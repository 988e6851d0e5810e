"""TaskTable: a run's tasks by index, each Task object built only when it is asked for."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from rqdag.shared.model.mapping import child_maker
from rqdag.shared.model.task import Task

Maker = Callable[[str, tuple[str, ...]], Task]


class TaskTable:
    """The graph of a run by index: names, dependency indexes, priorities.

    A coordinator taking a large run over needs the graph, not a Task per task:
    most of them are done. From a stored definition, a task's Task is made from
    its shared profile the first time it is asked for (when it is dispatched),
    then kept. The index of a task is its place in the definition, which is also
    its tie-break in the ready queue.
    """

    __slots__ = (
        "_child_makers",
        "_makers",
        "_profile_of",
        "_spans",
        "_starts",
        "_tasks",
        "base",
        "children",
        "deps",
        "index",
        "mapped",
        "names",
        "priorities",
    )

    def __init__(
        self,
        names: list[str],
        index: dict[str, int],
        deps: list[list[int]],
        priorities: list[int],
        tasks: list[Task | None],
        makers: Sequence[Maker] = (),
        profile_of: Sequence[int] = (),
    ) -> None:
        """Use :meth:`of_tasks` or :meth:`of_profiles`; the lists are taken, not copied."""
        self.names = names
        self.index = index  # name -> place in ``names``
        self.deps = deps
        self.priorities = priorities
        self._tasks = tasks
        self._makers = makers
        self._profile_of = profile_of
        # Mapped tasks' children, appended after the definition's tasks as they expand: one
        # span of indexes per mapped task (no per-child entry but its name, so that expanding
        # 100,000 children stays a few list operations).
        self.base = len(names)  # the first child's index: every index from here is a child
        self.children: dict[int, range] = {}  # mapped task -> its children, in item order
        self._starts: list[int] = []  # each span's first index, ascending
        self._spans: list[tuple[int, list[Any]]] = []  # each span's mapped task and items
        self._child_makers: dict[int, Maker] = {}
        self.mapped = self._find_mapped()  # the mapped tasks' indexes

    @classmethod
    def of_tasks(cls, tasks: Sequence[Task]) -> TaskTable:
        """The table of tasks whose graph is valid (every dependency is one of them)."""
        names = [t.name for t in tasks]
        index = dict(zip(names, range(len(names)), strict=True))
        deps = [[index[d] for d in t.depends_on] for t in tasks]
        return cls(names, index, deps, [t.priority for t in tasks], list(tasks))

    @classmethod
    def of_profiles(
        cls,
        names: list[str],
        index: dict[str, int],
        deps: list[list[int]],
        profile_of: list[int],
        makers: Sequence[Maker],
        profile_priorities: Sequence[int],
    ) -> TaskTable:
        """The table of checked definition rows (``index``: name -> row): task ``i`` is
        ``makers[profile_of[i]]``'s."""
        priorities = [profile_priorities[p] for p in profile_of]
        return cls(names, index, deps, priorities, [None] * len(names), makers, profile_of)

    def __len__(self) -> int:
        return len(self.names)

    def task(self, i: int) -> Task:
        """The Task at index ``i``."""
        task = self._tasks[i]
        if task is None:
            names = self.names
            depends_on = tuple([names[d] for d in self.deps[i]])
            parent = self.parent(i)
            make = self._makers[self._profile_of[i]] if parent is None else self._child_maker(parent)
            task = self._tasks[i] = make(names[i], depends_on)
        return task

    def _find_mapped(self) -> set[int]:
        """The indexes of the mapped tasks (a probe Task per profile, not a Task per task)."""
        if not self._makers:
            return {i for i, t in enumerate(self._tasks) if t is not None and t.map_over is not None}
        probes = [make("probe", ()).map_over is not None for make in self._makers]
        if not any(probes):
            return set()
        return {i for i, p in enumerate(self._profile_of) if probes[p]}

    def add_children(self, mapped: int, names: Sequence[str], items: Sequence[Any]) -> range:
        """Append the children of mapped task ``mapped`` (``names`` new, in item order); their indexes.

        A child depends on what its mapped task depends on, and has its priority.
        """
        start = len(self.names)
        count = len(names)
        deps = self.deps[mapped]
        self.names.extend(names)
        self.index.update(zip(names, range(start, start + count), strict=True))
        self.deps.extend([deps] * count)  # one shared list: dependencies are never changed in place
        self.priorities.extend([self.priorities[mapped]] * count)
        self._tasks.extend([None] * count)
        added = range(start, start + count)
        self._starts.append(start)
        self._spans.append((mapped, list(items)))
        self.children[mapped] = added
        return added

    def parent(self, i: int) -> int | None:
        """The mapped task whose child is task ``i``, or None for a task of the definition."""
        if i < self.base:
            return None
        return self._spans[bisect_right(self._starts, i) - 1][0]

    def item(self, i: int) -> Any:
        """The item of child ``i`` (None for a task of the definition)."""
        if i < self.base:
            return None
        k = bisect_right(self._starts, i) - 1
        return self._spans[k][1][i - self._starts[k]]

    def _child_maker(self, mapped: int) -> Maker:
        make = self._child_makers.get(mapped)
        if make is None:
            make = self._child_makers[mapped] = child_maker(self.task(mapped))
        return make

    def tasks(self) -> list[Task]:
        """Every Task, in definition order."""
        return [self.task(i) for i in range(len(self.names))]
