"""Task definitions: one node of a workflow (TaskStatus and Retry are re-exported; results are in
:mod:`rqdag.shared.model.result`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.code import code_identity, version_identity
from rqdag.shared.model.holds import check_hold_settings, hold_parts
from rqdag.shared.model.importing import callable_path
from rqdag.shared.model.retry import Backoff as Backoff  # Retry's home is its own module
from rqdag.shared.model.retry import Retry as Retry
from rqdag.shared.model.vocabulary import TaskKind
from rqdag.shared.model.vocabulary import TaskStatus as TaskStatus  # its home is the vocabulary

if TYPE_CHECKING:
    from rqdag.shared.model.workflow import Workflow

DEFAULT_MAX_ITEMS = 10_000  # children a mapped task may have unless its max_items says otherwise
MAX_ITEMS_LIMIT = 1_000_000


TaskCallable = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Task:
    """One node of a workflow.

    ``func`` is a callable or an import path ``"pkg.mod:qualname"``; it takes one
    argument, a :class:`~rqdag.TaskContext`. ``condition`` is the same kind of
    thing, a predicate: when it returns false the task is ``skipped``.

    ``version``: the author's word for what the code does; when given, it stands
    for the code in the definition hash (a resume sees a change only when it
    changes). ``code_hash``: the identity of ``func``'s code when ``func`` is an
    import path (a stored definition carries it); rqdag computes it for a callable.
    ``kind``: ``wait`` or ``sleep`` for a task the coordinator completes itself
    (:mod:`rqdag.shared.model.holds`); a sleep's ``seconds``.

    ``map_over`` makes it a mapped task: when that task succeeds with a list, one
    child ``name[KEY]`` runs per item (``KEY``: ``map_key(item)``, else the item's
    index), at most ``max_items`` of them; see :mod:`rqdag.shared.model.mapping`.
    """

    name: str
    func: TaskCallable | str
    depends_on: Sequence[str] = ()
    retry: Retry = field(default_factory=Retry)
    timeout_s: float | None = None
    condition: TaskCallable | str | None = None
    priority: int = 0
    continue_on_error: bool = False
    queue: str = "default"
    at_most_once: bool = False
    version: str | None = None
    code_hash: str | None = None
    kind: TaskKind = TaskKind.TASK
    seconds: float | None = None
    subflow: Workflow | None = None
    map_over: str | None = None
    map_key: TaskCallable | str | None = None
    max_items: int = DEFAULT_MAX_ITEMS

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise WorkflowDefinitionError(f"a task name must be a non-empty string, got {self.name!r}")
        if isinstance(self.depends_on, str):
            object.__setattr__(self, "depends_on", (self.depends_on,))
        else:
            object.__setattr__(self, "depends_on", tuple(self.depends_on))
        check_map_settings(self)
        for dep in self.depends_on:
            if not isinstance(dep, str):
                raise WorkflowDefinitionError(
                    f"task '{self.name}': depends_on entries must be task names, got {dep!r}"
                )
        if not (isinstance(self.func, str) or callable(self.func)):
            raise WorkflowDefinitionError(
                f"task '{self.name}': func must be a callable or an import path, got {self.func!r}"
            )
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise WorkflowDefinitionError(
                f"task '{self.name}': timeout_s must be > 0, got {self.timeout_s!r}"
            )
        self._check_retry()
        for label in ("version", "code_hash"):
            value = getattr(self, label)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise WorkflowDefinitionError(
                    f"task '{self.name}': {label} must be a non-empty string or None, got {value!r}"
                )
        check_hold_settings(self)

    def _check_retry(self) -> None:
        """A Retry, and none that would start an at-most-once task again after any exception."""
        if not isinstance(self.retry, Retry):
            raise WorkflowDefinitionError(
                f"task '{self.name}': retry must be a rqdag.Retry, got {self.retry!r}"
            )
        if self.at_most_once and self.retry.attempts and not self.retry.on_names:
            raise WorkflowDefinitionError(
                f"task '{self.name}': at_most_once=True with retry=Retry(attempts={self.retry.attempts}) "
                "would start it again after an attempt that started; list the exceptions that mean "
                "nothing happened, as in Retry(attempts=3, on=(ConnectionRefusedError,)), or drop the retry"
            )

    @classmethod
    def maker(cls, settings: Mapping[str, Any]) -> Callable[[str, tuple[str, ...]], Task]:
        """A fast maker of tasks that share ``settings`` (every field but the name and
        dependencies, as one checked ``Task(**settings)`` took them).

        For stored definitions, checked already: the tasks it makes skip the
        checks, and their slots are filled through the slot descriptors.
        """
        slot = vars(cls)
        put_name = slot["name"].__set__
        put_deps = slot["depends_on"].__set__
        given = {**_field_defaults(cls), **settings}
        puts = [(slot[key].__set__, value) for key, value in given.items()]
        new = object.__new__

        def make(name: str, depends_on: tuple[str, ...]) -> Task:
            task = new(cls)
            put_name(task, name)
            put_deps(task, depends_on)
            for put, value in puts:
                put(task, value)
            return task

        return make

    @property
    def func_path(self) -> str | None:
        """The import path of ``func``, or None when it cannot be imported by path."""
        return self.func if isinstance(self.func, str) else callable_path(self.func)

    @property
    def map_key_path(self) -> str | None:
        """The import path of ``map_key``, or None (no key, or not importable)."""
        if self.map_key is None or isinstance(self.map_key, str):
            return self.map_key
        return callable_path(self.map_key)

    @property
    def condition_path(self) -> str | None:
        """The import path of ``condition``, or None (no condition, or not importable)."""
        if self.condition is None or isinstance(self.condition, str):
            return self.condition
        return callable_path(self.condition)

    @property
    def code_id(self) -> str | None:
        """The code part of the definition hash: ``version:V`` when a version is given, else
        the identity of ``func``'s code (None when it is an import path without ``code_hash``)."""
        if self.version is not None:
            return version_identity(self.version)
        if self.code_hash is not None or isinstance(self.func, str):
            return self.code_hash
        return code_identity(self.func)

    def settings_hash(self) -> str:
        """Hash of the settings that change what the task does: its function's import path,
        retry, timeout, condition, queue, continue_on_error and at_most_once (not its priority)."""
        return _digest(self._settings_parts())

    def definition_hash(self) -> str:
        """Hash of what the task does: its settings, dependencies and :attr:`code_id` (without
        a code part, the hash that definitions stored before code was hashed carry)."""
        settings = self._settings_parts()
        parts = [settings[0], ",".join(sorted(self.depends_on)), *settings[1:]]
        code = self.code_id
        if code is not None:
            parts.append(code)
        if self.map_over is not None:  # only then: the hashes of plain tasks stay what they were
            key = self.map_key_path or (_local_name(self.map_key) if self.map_key is not None else None)
            parts += [self.map_over, repr(key), repr(self.max_items)]
        return _digest(parts)

    def _settings_parts(self) -> list[str]:
        func = self.func_path or _local_name(self.func)
        cond = self.condition_path or (_local_name(self.condition) if self.condition is not None else None)
        return [
            func,
            repr(sorted(self.retry.to_dict().items())),
            repr(self.timeout_s),
            repr(cond),
            repr(self.continue_on_error),
            self.queue,
            repr(self.at_most_once),
            *hold_parts(self),
        ]


def _field_defaults(cls: type[Task]) -> dict[str, Any]:
    """Every field but the name and dependencies, at its default (what ``settings`` may leave out)."""
    out: dict[str, Any] = {}
    for item in fields(cls):
        if item.name in ("name", "depends_on", "func"):
            continue
        factory = item.default_factory
        out[item.name] = item.default if factory is MISSING else factory()
    return out


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def check_map_settings(task: Task) -> None:
    """Check the map fields of ``task``; a mapped task depends on its source (added if not listed)."""
    if "[" in task.name or "]" in task.name:
        raise WorkflowDefinitionError(
            f"task '{task.name}': a task name may not contain '[' or ']' (mapped children use them)"
        )
    if task.map_over is None:
        if task.map_key is not None:
            raise WorkflowDefinitionError(f"task '{task.name}': map_key is given without map_over")
        return
    if not isinstance(task.map_over, str) or not task.map_over:
        raise WorkflowDefinitionError(
            f"task '{task.name}': map_over must be the name of a task, got {task.map_over!r}"
        )
    if task.map_key is not None and not (isinstance(task.map_key, str) or callable(task.map_key)):
        raise WorkflowDefinitionError(
            f"task '{task.name}': map_key must be a callable or an import path, got {task.map_key!r}"
        )
    items = task.max_items
    if not isinstance(items, int) or isinstance(items, bool) or not 1 <= items <= MAX_ITEMS_LIMIT:
        raise WorkflowDefinitionError(
            f"task '{task.name}': max_items must be an integer from 1 to {MAX_ITEMS_LIMIT:,}, got {items!r}"
        )
    if task.map_over not in task.depends_on:
        object.__setattr__(task, "depends_on", (task.map_over, *task.depends_on))


def _local_name(obj: object) -> str:
    module = getattr(obj, "__module__", "?")
    return f"{module}:{getattr(obj, '__qualname__', repr(obj))}"
