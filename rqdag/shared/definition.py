"""A workflow's definition as stored with a run: import paths and settings, as JSON.

Coordinators rebuild the workflow from it without importing user code; workers
resolve the import paths against their registry of allowed functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rqdag.errors import DecodeError, WorkflowDefinitionError
from rqdag.shared.codec import dumps, loads
from rqdag.shared.model import Retry, Task
from rqdag.shared.workflow import Workflow

DEFINITION_FORMAT = 1


def task_to_dict(task: Task) -> dict[str, Any]:
    """The stored form of one task; its function must be importable by path."""
    func = task.func_path
    if func is None:
        raise WorkflowDefinitionError(
            f"task '{task.name}': its function {task.func!r} cannot be imported by path "
            "(define it at module level in a module the workers can import)"
        )
    condition = task.condition_path
    if task.condition is not None and condition is None:
        raise WorkflowDefinitionError(
            f"task '{task.name}': its condition {task.condition!r} cannot be imported by path"
        )
    return {
        "name": task.name,
        "func": func,
        "depends_on": list(task.depends_on),
        "retry": task.retry.to_dict(),
        "timeout_s": task.timeout_s,
        "condition": condition,
        "priority": task.priority,
        "continue_on_error": task.continue_on_error,
        "queue": task.queue,
        "at_most_once": task.at_most_once,
        "hash": task.definition_hash(),
    }


def encode_definition(workflow: Workflow) -> bytes:
    """The stored form of a workflow (validated first)."""
    workflow.validate()
    document = {
        "format": DEFINITION_FORMAT,
        "name": workflow.name,
        "tasks": [task_to_dict(t) for t in workflow.tasks],
    }
    return dumps(document, what=f"definition of workflow '{workflow.name}'")


def decode_definition(raw: bytes | str, *, run_id: str) -> Workflow:
    """Rebuild the workflow of run ``run_id``; errors name the run and the field at fault."""
    where = f"run '{run_id}': definition"
    document = loads(raw, what=where)
    if not isinstance(document, Mapping):
        raise DecodeError(f"{where} is not a JSON object")
    fmt = document.get("format")
    if not isinstance(fmt, int) or fmt > DEFINITION_FORMAT:
        raise DecodeError(
            f"{where}: field 'format' is {fmt!r}; this rqdag reads formats up to "
            f"{DEFINITION_FORMAT} (was the run submitted by a newer rqdag?)"
        )
    tasks = document.get("tasks")
    if not isinstance(tasks, list):
        raise DecodeError(f"{where}: field 'tasks' must be a list")
    try:
        workflow = Workflow(str(document.get("name") or "workflow"))
        for index, item in enumerate(tasks):
            workflow.add(_task_from_dict(item, f"{where}: tasks[{index}]"))
        workflow.validate()
    except WorkflowDefinitionError as exc:
        raise DecodeError(f"{where}: {exc}") from None
    return workflow


def _task_from_dict(item: Any, where: str) -> Task:
    if not isinstance(item, Mapping):
        raise DecodeError(f"{where} is not an object")
    retry = item.get("retry") or {}
    if not isinstance(retry, Mapping):
        raise DecodeError(f"{where}: field 'retry' must be an object")
    try:
        return Task(
            name=item["name"],
            func=item["func"],
            depends_on=item.get("depends_on") or (),
            retry=Retry(**retry),
            timeout_s=item.get("timeout_s"),
            condition=item.get("condition"),
            priority=int(item.get("priority") or 0),
            continue_on_error=bool(item.get("continue_on_error")),
            queue=str(item.get("queue") or "default"),
            at_most_once=bool(item.get("at_most_once")),
        )
    except KeyError as exc:
        raise DecodeError(f"{where}: field {exc.args[0]!r} is missing") from None
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{where}: {exc}") from None
