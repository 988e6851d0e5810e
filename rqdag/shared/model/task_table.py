"""TaskTable: a run's tasks by index, each Task object built only when it is asked for."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

    __slots__ = ("_makers", "_profile_of", "_tasks", "deps", "index", "names", "priorities")

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
            task = self._tasks[i] = self._makers[self._profile_of[i]](names[i], depends_on)
        return task

    def tasks(self) -> list[Task]:
        """Every Task, in definition order."""
        return [self.task(i) for i in range(len(self.names))]
