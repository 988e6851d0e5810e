"""The job contract: what the coordinator enqueues for one attempt and the worker parses.

Both sides import :class:`TaskJob`: the coordinator builds one with
:meth:`TaskJob.of_task` and enqueues :data:`RUN_TASK` with
:meth:`TaskJob.to_kwargs` (RQ's JSON serializer carries them); the worker's
job function parses them back with :meth:`TaskJob.from_kwargs`.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    ) -> TaskJob:
        """The job of attempt ``attempt`` (fenced by ``token``) of ``task``, after ``failures``
        failed or lost attempts (``item``: a child's;
        ``mapped_inputs``: its dependencies that are mapped tasks; ``lazy_inputs``: those read
        only when the task reads them)."""
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
            definition_hash=task.definition_hash(),
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
        fields = _Fields(kwargs)
        return cls(
            run_id=fields.text("run_id"),
            task=fields.text("task"),
            token=fields.text("token"),
            attempt=fields.integer("attempt"),
            func=fields.text("func"),
            condition=fields.optional_text("condition"),
            depends_on=fields.names("depends_on"),
            timeout_s=fields.optional_number("timeout_s"),
            retries=fields.integer("retries", default=0),
            at_most_once=fields.flag("at_most_once"),
            definition_hash=fields.optional_text("definition_hash"),
            workflow=fields.optional_text("workflow"),
            dispatched_at=fields.optional_number("dispatched_at"),
            traceparent=fields.optional_text("traceparent"),
            item=kwargs.get("item"),
            mapped_inputs=fields.names("mapped_inputs"),
            lazy_inputs=fields.names("lazy_inputs"),
            failures=fields.integer("failures", default=0),
            retry_on=fields.names("retry_on", "a list of exception names"),
        )

    def to_kwargs(self) -> dict[str, Any]:
        """The JSON kwargs of the RQ job that carries this attempt."""
        return {
            "run_id": self.run_id,
            "task": self.task,
            "token": self.token,
            "attempt": self.attempt,
            "func": self.func,
            "condition": self.condition,
            "depends_on": list(self.depends_on),
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "at_most_once": self.at_most_once,
            "definition_hash": self.definition_hash,
            "workflow": self.workflow,
            "dispatched_at": self.dispatched_at,
            "traceparent": self.traceparent,
            "item": self.item,
            "mapped_inputs": list(self.mapped_inputs),
            "lazy_inputs": list(self.lazy_inputs),
            "failures": self.failures,
            "retry_on": list(self.retry_on),
        }


class _Fields:
    """Typed access to the kwargs of a job, with errors naming the field."""

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.kwargs = kwargs

    def error(self, name: str, expected: str) -> RqdagError:
        where = f"run {self.kwargs.get('run_id')!r}, task {self.kwargs.get('task')!r}"
        return RqdagError(
            f"malformed rqdag task job ({where}): field {name!r} must be {expected}, "
            f"got {self.kwargs.get(name)!r}"
        )

    def text(self, name: str) -> str:
        value = self.kwargs.get(name)
        if not isinstance(value, str) or not value:
            raise self.error(name, "a non-empty string")
        return value

    def names(self, name: str, expected: str = "a list of task names") -> tuple[str, ...]:
        value = self.kwargs.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, expected)
        return tuple(value)

    def optional_text(self, name: str) -> str | None:
        value = self.kwargs.get(name)
        if value is not None and not isinstance(value, str):
            raise self.error(name, "a string or null")
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        value = self.kwargs.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.error(name, "an integer >= 0")
        return value

    def optional_number(self, name: str) -> float | None:
        value = self.kwargs.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error(name, "a number > 0 or null")
        return float(value)

    def flag(self, name: str) -> bool:
        value = self.kwargs.get(name, False)
        if not isinstance(value, bool):
            raise self.error(name, "true or false")
        return value
