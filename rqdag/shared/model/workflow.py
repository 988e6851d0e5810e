"""Workflow: a named set of tasks, built with the ``@workflow.task()`` decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from rqdag.errors import RqdagError, WorkflowDefinitionError
from rqdag.shared.model.duration import parse_duration
from rqdag.shared.model.graph import validate_graph
from rqdag.shared.model.holds import HELD_FUNC, params_task
from rqdag.shared.model.task import DEFAULT_MAX_ITEMS, Retry, Task, TaskCallable
from rqdag.shared.model.vocabulary import TaskKind

F = TypeVar("F", bound=Callable[..., Any])


class Workflow:
    """A named DAG of tasks.

    ``retention``: how long a finished run of it stays in Redis (seconds, or a
    text such as ``"7d"``; ``0`` keeps it forever); None leaves it to the
    coordinator's ``--retention``.

    >>> wf = Workflow("nightly", retention="30d")
    >>> @wf.task()
    ... def extract(ctx): ...
    """

    def __init__(
        self, name: str, tasks: Iterable[Task] = (), *, retention: str | float | None = None
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise WorkflowDefinitionError(f"a workflow name must be a non-empty string, got {name!r}")
        self.name = name
        self.retention_s: float | None = None
        if retention is not None:
            try:
                self.retention_s = parse_duration(retention, what=f"workflow '{name}': retention")
            except RqdagError as exc:
                raise WorkflowDefinitionError(str(exc)) from None
        self._tasks: dict[str, Task] = {}
        for task in tasks:
            self.add(task)

    @classmethod
    def of_checked(cls, name: str, tasks: dict[str, Task]) -> Workflow:
        """A workflow from tasks by name that are known to form a valid graph (a stored definition)."""
        workflow = cls(name)
        workflow._tasks = tasks
        return workflow

    @property
    def tasks(self) -> list[Task]:
        """The tasks, in the order they were added."""
        return list(self._tasks.values())

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, {len(self._tasks)} tasks)"

    def add(self, task: Task) -> Task:
        """Add a Task; raises WorkflowDefinitionError on a duplicate name."""
        if task.name in self._tasks:
            raise WorkflowDefinitionError(f"workflow '{self.name}': duplicate task name '{task.name}'")
        self._tasks[task.name] = task
        return task

    def task(
        self,
        name: str | None = None,
        *,
        depends_on: Sequence[str] = (),
        retry: Retry | None = None,
        timeout_s: float | None = None,
        condition: TaskCallable | str | None = None,
        priority: int = 0,
        continue_on_error: bool = False,
        queue: str = "default",
        at_most_once: bool = False,
        version: str | None = None,
    ) -> Callable[[F], F]:
        """Decorator: register the function as a task (named after it unless ``name``).

        ``version``: stands for the function's code in the definition hash (see
        :class:`Task`), for authors who decide themselves when their code changed.
        """
        return self._registering(
            name,
            depends_on=depends_on,
            retry=retry,
            timeout_s=timeout_s,
            condition=condition,
            priority=priority,
            continue_on_error=continue_on_error,
            queue=queue,
            at_most_once=at_most_once,
            version=version,
        )

    def wait(
        self, name: str, *, depends_on: Sequence[str] = (), timeout_s: float | None = None, priority: int = 0
    ) -> Task:
        """Add a wait: it succeeds with a signal's data (``rqdag signal RUN NAME``,
        ``client.signal``), fails with a failure signal, or fails at ``timeout_s`` with
        "no signal within ...". No worker runs it."""
        task = Task(
            name, HELD_FUNC, depends_on=depends_on, timeout_s=timeout_s, priority=priority, kind=TaskKind.WAIT
        )
        return self.add(task)

    def sleep(self, name: str, *, seconds: float, depends_on: Sequence[str] = (), priority: int = 0) -> Task:
        """Add a sleep: it succeeds ``seconds`` after it is reached, by Redis time (a restarted
        coordinator keeps its wake-up time). No worker runs it."""
        task = Task(
            name, HELD_FUNC, depends_on=depends_on, priority=priority, kind=TaskKind.SLEEP, seconds=seconds
        )
        return self.add(task)

    def subflow(
        self,
        child: Workflow,
        name: str | None = None,
        *,
        depends_on: Sequence[str] = (),
        retry: Retry | None = None,
        timeout_s: float | None = None,
        queue: str = "default",
    ) -> Callable[[F], F]:
        """Decorator: a child run of workflow ``child`` (Redis only).

        The function runs on a worker as the task ``NAME.params`` and returns the
        child run's params; then the task ``NAME`` starts the child run
        ``PARENT_RUN.NAME`` (once, whatever the restarts), waits for it without
        holding a worker, and ends with its outcome: ``success`` with the data of
        the child's final tasks (name -> data), or ``failure`` naming the child
        run and its failed tasks.
        """
        if not isinstance(child, Workflow):
            raise WorkflowDefinitionError(f"subflow: the child must be a rqdag.Workflow, got {child!r}")
        child.validate()

        return self._registering(
            name, child=child, depends_on=depends_on, retry=retry, timeout_s=timeout_s, queue=queue
        )

    def map(
        self,
        over: str,
        name: str | None = None,
        *,
        key: TaskCallable | str | None = None,
        max_items: int = DEFAULT_MAX_ITEMS,
        depends_on: Sequence[str] = (),
        retry: Retry | None = None,
        timeout_s: float | None = None,
        condition: TaskCallable | str | None = None,
        priority: int = 0,
        continue_on_error: bool = False,
        queue: str = "default",
        at_most_once: bool = False,
    ) -> Callable[[F], F]:
        """Decorator: register the function as a task mapped over task ``over``'s list.

        One child ``name[KEY]`` runs per item (``ctx.item``); ``KEY`` is
        ``key(item)``, or the item's index without ``key``. The mapped task's
        data is the list of its children's data, in item order.
        """
        return self._registering(
            name,
            depends_on=depends_on,
            retry=retry,
            timeout_s=timeout_s,
            condition=condition,
            priority=priority,
            continue_on_error=continue_on_error,
            queue=queue,
            at_most_once=at_most_once,
            map_over=over,
            map_key=key,
            max_items=max_items,
        )

    def _registering(
        self, name: str | None, *, retry: Retry | None, child: Workflow | None = None, **settings: Any
    ) -> Callable[[F], F]:
        """The decorator every ``@wf.<kind>(...)`` returns: it adds the function as a Task with
        ``settings`` (and ``retry``, else none), named ``name`` or after the function; with
        ``child``, as a subflow's params task, followed by the task that runs the child run."""

        def register(func: F) -> F:
            task_name = name or func.__name__
            if child is None:
                self.add(Task(name=task_name, func=func, retry=retry or Retry(), **settings))
                return func
            first = params_task(task_name)
            self.add(Task(name=first, func=func, retry=retry or Retry(), **settings))
            self.add(Task(task_name, HELD_FUNC, depends_on=[first], kind=TaskKind.SUBFLOW, subflow=child))
            return func

        return register

    def validate(self) -> None:
        """Check names, dependencies and cycles; raises WorkflowDefinitionError."""
        try:
            validate_graph(self.tasks)
        except WorkflowDefinitionError as exc:
            raise WorkflowDefinitionError(f"workflow '{self.name}': {exc}") from None

    def definition_hashes(self) -> dict[str, str]:
        """Task name to the hash of its definition (see Task.definition_hash)."""
        return {t.name: t.definition_hash() for t in self._tasks.values()}


def as_workflow(tasks_or_workflow: Workflow | Iterable[Task], name: str = "adhoc") -> Workflow:
    """Accept a Workflow or a list of Task objects."""
    if isinstance(tasks_or_workflow, Workflow):
        return tasks_or_workflow
    tasks = list(tasks_or_workflow)
    for item in tasks:
        if not isinstance(item, Task):
            raise WorkflowDefinitionError(
                f"expected a Workflow or a list of rqdag.Task, got an item {item!r}"
            )
    return Workflow(name, tasks)
