"""A workflow's definition as stored with a run: import paths, settings and code identities, as JSON.

Coordinators rebuild the workflow from it without importing user code; workers
resolve the import paths against their registry of allowed functions. The parts
of each task's definition hash are kept apart, so a resume can say which one
changed: the settings (as fields), the dependencies (as rows) and the code
(``version``, or ``code``: the identity of the function's code when submitted).
Format 3 added ``version`` and ``code``; formats 1 and 2 are read as tasks
whose code is not known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rqdag.errors import DecodeError, WorkflowDefinitionError
from rqdag.shared.model.codec import dumps, loads
from rqdag.shared.model.definition_rows import table_of_rows
from rqdag.shared.model.task import DEFAULT_MAX_ITEMS, Retry, Task
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import TaskKind
from rqdag.shared.model.workflow import Workflow

DEFINITION_FORMAT = 3

CodeMemo = dict[Any, str | None]  # a function -> its code identity, for one encoding


def task_to_dict(task: Task) -> dict[str, Any]:
    """One task in full (what ``rqdag inspect`` shows); its function must be importable by path."""
    return {
        "name": task.name,
        **_profile(task),
        "depends_on": list(task.depends_on),
        "hash": task.definition_hash(),
    }


def _profile(task: Task, codes: CodeMemo | None = None) -> dict[str, Any]:
    """Everything of a task but its name and dependencies (tasks of one kind share it)."""
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
    holds = {} if task.kind is TaskKind.TASK else {"kind": task.kind.value, "seconds": task.seconds}
    if task.subflow is not None:
        holds["subflow"] = loads(encode_definition(task.subflow), what=f"task '{task.name}': subflow")
    profile = {
        **holds,
        "func": func,
        "retry": task.retry.to_dict(),
        "timeout_s": task.timeout_s,
        "condition": condition,
        "priority": task.priority,
        "continue_on_error": task.continue_on_error,
        "queue": task.queue,
        "at_most_once": task.at_most_once,
        "version": task.version,
        "code": None if task.version is not None else _code_of(task, codes),
    }
    if task.map_over is not None:  # only then: the stored form of a plain task stays as it was
        key = task.map_key_path
        if task.map_key is not None and key is None:
            raise WorkflowDefinitionError(
                f"task '{task.name}': its map_key {task.map_key!r} cannot be imported by path "
                "(define it at module level, or give its import path)"
            )
        profile.update(map_over=task.map_over, map_key=key, max_items=task.max_items)
    return profile


def _code_of(task: Task, codes: CodeMemo | None) -> str | None:
    """``task.code_id``, computed once per function of a workflow (tasks often share one)."""
    func = task.func
    if codes is None or task.code_hash is not None or isinstance(func, str):
        return task.code_id
    try:
        if func not in codes:
            codes[func] = task.code_id
        return codes[func]
    except TypeError:  # an unhashable callable object
        return task.code_id


def encode_definition(workflow: Workflow) -> bytes:
    """The stored form of a workflow (validated first).

    Compact, so that a coordinator loads a run of 100,000 tasks quickly: every
    task is ``[name, profile, [dependency indexes]]``, and tasks alike share
    one entry of ``profiles`` (function, retry, timeout, queue, ...).
    """
    workflow.validate()
    tasks = workflow.tasks
    index = {t.name: i for i, t in enumerate(tasks)}
    profiles: list[dict[str, Any]] = []
    profile_ids: dict[bytes, int] = {}
    rows: list[list[Any]] = []
    codes: CodeMemo = {}
    for task in tasks:
        profile = _profile(task, codes)
        key = dumps(profile, what=f"task '{task.name}'")
        pid = profile_ids.setdefault(key, len(profiles))
        if pid == len(profiles):
            profiles.append(profile)
        rows.append([task.name, pid, [index[d] for d in task.depends_on]])
    document = {"format": DEFINITION_FORMAT, "name": workflow.name, "profiles": profiles, "tasks": rows}
    return dumps(document, what=f"definition of workflow '{workflow.name}'")


def decode_definition(raw: bytes | str, *, run_id: str) -> Workflow:
    """Rebuild the workflow of run ``run_id``; errors name the run and the field at fault."""
    name, decoded = _decode(raw, run_id)
    if isinstance(decoded, Workflow):
        return decoded
    return Workflow.of_checked(name, {task.name: task for task in decoded.tasks()})


def decode_table(raw: bytes | str, *, run_id: str) -> TaskTable:
    """The graph of run ``run_id`` as a :class:`TaskTable` (what a coordinator loads);
    errors as :func:`decode_definition`."""
    _, decoded = _decode(raw, run_id)
    return TaskTable.of_tasks(decoded.tasks) if isinstance(decoded, Workflow) else decoded


def _decode(raw: bytes | str, run_id: str) -> tuple[str, Workflow | TaskTable]:
    """The workflow's name, and its tasks: a Workflow (format 1) or a table (formats 2 and 3)."""
    where = f"run '{run_id}': definition"
    document = loads(raw, what=where)
    if not isinstance(document, Mapping):
        raise DecodeError(f"{where} is not a JSON object")
    fmt = document.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1 or fmt > DEFINITION_FORMAT:
        raise DecodeError(
            f"{where}: field 'format' is {fmt!r}; this rqdag reads formats 1 to "
            f"{DEFINITION_FORMAT} (was the run submitted by a newer rqdag?)"
        )
    tasks = document.get("tasks")
    if not isinstance(tasks, list):
        raise DecodeError(f"{where}: field 'tasks' must be a list")
    name = str(document.get("name") or "workflow")
    try:
        if fmt == 1:
            workflow = Workflow(
                name, (_task_from_dict(item, f"{where}: tasks[{i}]") for i, item in enumerate(tasks))
            )
            workflow.validate()
            return name, workflow
        return name, table_of_rows(_profiles(document.get("profiles"), where), tasks, where)
    except WorkflowDefinitionError as exc:
        raise DecodeError(f"{where}: {exc}") from None


def _profiles(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise DecodeError(f"{where}: field 'profiles' must be a list")
    out = []
    for i, item in enumerate(raw):
        what = f"{where}: profiles[{i}]"
        if not isinstance(item, Mapping):
            raise DecodeError(f"{what} is not an object")
        out.append(_settings(item, what))
    return out


def _settings(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Task keyword arguments from a stored profile (or a format-1 task)."""
    retry = item.get("retry") or {}
    if not isinstance(retry, Mapping):
        raise DecodeError(f"{where}: field 'retry' must be an object")
    if "func" not in item:
        raise DecodeError(f"{where}: field 'func' is missing")
    try:
        at_most_once = bool(item.get("at_most_once"))
        policy = Retry(**retry)
        if at_most_once and policy.attempts and not policy.on_names:
            # stored before at-most-once retries had to list their exceptions: never again after a start
            policy = Retry(delay_s=policy.delay_s, backoff=policy.backoff, max_delay_s=policy.max_delay_s)
        return {
            "func": item["func"],
            "retry": policy,
            "timeout_s": item.get("timeout_s"),
            "condition": item.get("condition"),
            "priority": int(item.get("priority") or 0),
            "continue_on_error": bool(item.get("continue_on_error")),
            "queue": str(item.get("queue") or "default"),
            "at_most_once": at_most_once,
            "version": _optional_text(item, "version", where),
            "code_hash": _optional_text(item, "code", where),
            "kind": TaskKind(item.get("kind") or TaskKind.TASK),
            "seconds": item.get("seconds"),
            "subflow": _subflow(item.get("subflow"), where),
            "map_over": item.get("map_over"),
            "map_key": item.get("map_key"),
            "max_items": item.get("max_items", DEFAULT_MAX_ITEMS),
        }
    except (TypeError, ValueError, WorkflowDefinitionError) as exc:
        raise DecodeError(f"{where}: {exc}") from None


def _subflow(raw: Any, where: str) -> Workflow | None:
    """The child workflow a subflow's profile holds (its own stored definition), or None."""
    if raw is None:
        return None
    return decode_definition(dumps(raw, what=f"{where}: subflow"), run_id=f"{where}: subflow")


def _optional_text(item: Mapping[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise DecodeError(f"{where}: field '{key}' must be a string or null, got {value!r}")
    return value


def _task_from_dict(item: Any, where: str) -> Task:
    if not isinstance(item, Mapping):
        raise DecodeError(f"{where} is not an object")
    if "name" not in item:
        raise DecodeError(f"{where}: field 'name' is missing")
    try:
        return Task(name=item["name"], depends_on=item.get("depends_on") or (), **_settings(item, where))
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{where}: {exc}") from None
