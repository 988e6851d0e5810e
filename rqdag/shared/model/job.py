"""The job contract: what the coordinator enqueues for one attempt and the worker parses.

Both sides import :class:`TaskJob`: the coordinator builds one with
:meth:`TaskJob.of_task` and enqueues :data:`RUN_TASK` with
:meth:`TaskJob.to_kwargs` (RQ's JSON serializer carries them); the worker's
job function parses them back with :meth:`TaskJob.from_kwargs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rqdag.errors import RqdagError, WorkflowDefinitionError
from rqdag.shared.model.task import Task

RUN_TASK = "rqdag.worker.job.run_task"
"""The function name of every rqdag task job; the only one an rqdag worker runs."""


@dataclass(frozen=True)
class TaskJob:
    """One attempt of one task of one run, as its RQ job carries it.

    ``retries`` is the task's ``Retry.attempts``: how many runs may follow the
    first; ``failures`` counts the task's failed or lost attempts before this one,
    so a failure of this attempt is final when ``failures >= retries``, or when its
    exception is not one of ``retry_on`` (``Retry.on``, as ``"module:Qualname"``;
    empty: any).
    ``workflow`` and ``dispatched_at`` (wall clock) label and time the attempt in
    metrics; ``traceparent`` is the W3C trace context of the run's span, so the
    attempt's span is its child (see :mod:`rqdag.shared.traces`).
    """

    run_id: str
    task: str
    token: str
    attempt: int
    func: str
    condition: str | None = None
    depends_on: tuple[str, ...] = ()
    timeout_s: float | None = None
    retries: int = 0
    at_most_once: bool = False
    definition_hash: str | None = None
    workflow: str | None = None
    dispatched_at: float | None = None
    traceparent: str | None = None
    item: Any = None  # a mapped task's child: its item (``ctx.item``)
    mapped_inputs: tuple[str, ...] = ()  # dependencies that are mapped tasks: a failure's data is an input
    lazy_inputs: tuple[str, ...] = ()  # dependencies read only when the task reads them (a child's source)
    failures: int = 0
    retry_on: tuple[str, ...] = ()

    @classmethod
    def of_task(
        cls,
        run_id: str,
        task: Task,
        *,
        attempt: int,
        token: str,
        workflow: str | None = None,
        dispatched_at: float | None = None,
        traceparent: str | None = None,
        item: Any = None,
        mapped_inputs: tuple[str, ...] = (),
        lazy_inputs: tuple[str, ...] = (),
        failures: int = 0,
        definition_hash: str | None = None,
    ) -> TaskJob:
        """The job of attempt ``attempt`` (fenced by ``token``) of ``task``, after ``failures``
        failed or lost attempts (``item``: a child's;
        ``mapped_inputs``: its dependencies that are mapped tasks; ``lazy_inputs``: those read
        only when the task reads them; ``definition_hash``: the task's, if known already)."""
        func = task.func_path
        if func is None:  # a stored definition has only import paths: never so in a distributed run
            raise WorkflowDefinitionError(
                f"task '{task.name}': its function {task.func!r} cannot be imported by path"
            )
        return cls(
            run_id=run_id,
            task=task.name,
            token=token,
            attempt=attempt,
            func=func,
            condition=task.condition_path,
            depends_on=tuple(task.depends_on),
            timeout_s=task.timeout_s,
            retries=task.retry.attempts,
            at_most_once=task.at_most_once,
            definition_hash=definition_hash or task.definition_hash(),
            workflow=workflow,
            dispatched_at=dispatched_at,
            traceparent=traceparent,
            item=item,
            mapped_inputs=mapped_inputs,
            lazy_inputs=lazy_inputs,
            failures=failures,
            retry_on=task.retry.on_names,
        )

    @property
    def description(self) -> str:
        """A line for RQ's job description (``rq info``, dashboards)."""
        return f"rqdag {self.run_id} {self.task} #{self.attempt}"

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> TaskJob:
        """Check and parse the job's kwargs; raises RqdagError naming the bad field."""
        return cls(**{name: kind.parse(kwargs, name) for name, kind in _FIELDS})

    def to_kwargs(self) -> dict[str, Any]:
        """The JSON kwargs of the RQ job that carries this attempt."""
        return {name: kind.dump(getattr(self, name)) for name, kind in _FIELDS}


def _error(kwargs: Mapping[str, Any], name: str, expected: str) -> RqdagError:
    where = f"run {kwargs.get('run_id')!r}, task {kwargs.get('task')!r}"
    return RqdagError(
        f"malformed rqdag task job ({where}): field {name!r} must be {expected}, got {kwargs.get(name)!r}"
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_positive_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0)


def _is_names_or_blank(value: Any) -> bool:
    return not value or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class _Kind:
    """How one field of a job's kwargs is checked (``ok``, else an error saying it must be
    ``expected``), read (``absent`` when missing, then ``load``) and written (``dump``)."""

    expected: str
    ok: Callable[[Any], bool]
    absent: Any = None
    load: Callable[[Any], Any] = _same
    dump: Callable[[Any], Any] = _same

    def parse(self, kwargs: Mapping[str, Any], name: str) -> Any:
        """The field ``name`` of ``kwargs``, checked; raises RqdagError naming the job and field."""
        value = kwargs.get(name, self.absent)
        if not self.ok(value):
            raise _error(kwargs, name, self.expected)
        return self.load(value)


def _names(expected: str) -> _Kind:
    return _Kind(expected, _is_names_or_blank, load=lambda v: tuple(v or ()), dump=list)


_TEXT = _Kind("a non-empty string", lambda v: isinstance(v, str) and bool(v))
_OPTIONAL_TEXT = _Kind("a string or null", lambda v: v is None or isinstance(v, str))
_COUNT = _Kind("an integer >= 0", _is_count)
_COUNT_OR_ZERO = _Kind("an integer >= 0", _is_count, absent=0)
_OPTIONAL_NUMBER = _Kind(
    "a number > 0 or null", _is_positive_or_none, load=lambda v: None if v is None else float(v)
)
_FLAG = _Kind("true or false", lambda v: isinstance(v, bool), absent=False)
_ANY = _Kind("anything", lambda v: True)
_TASK_NAMES = _names("a list of task names")

_FIELDS: tuple[tuple[str, _Kind], ...] = (
    ("run_id", _TEXT),
    ("task", _TEXT),
    ("token", _TEXT),
    ("attempt", _COUNT),
    ("func", _TEXT),
    ("condition", _OPTIONAL_TEXT),
    ("depends_on", _TASK_NAMES),
    ("timeout_s", _OPTIONAL_NUMBER),
    ("retries", _COUNT_OR_ZERO),
    ("at_most_once", _FLAG),
    ("definition_hash", _OPTIONAL_TEXT),
    ("workflow", _OPTIONAL_TEXT),
    ("dispatched_at", _OPTIONAL_NUMBER),
    ("traceparent", _OPTIONAL_TEXT),
    ("item", _ANY),
    ("mapped_inputs", _TASK_NAMES),
    ("lazy_inputs", _TASK_NAMES),
    ("failures", _COUNT_OR_ZERO),
    ("retry_on", _names("a list of exception names")),
)
"""Every field of :class:`TaskJob`, in order, with how its kwarg is checked, read and written."""
