"""The plan of a resume: which results stay, which tasks run again, and why (pure, no Redis).

A success stays unless its task changed since it ran (its code, its settings or
its dependencies), an operator asks for it to run again (``--rerun``), or a task
it depends on, directly or not, runs again for one of these reasons. Every
other result is set aside and its task runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rqdag.shared.model.code import compare_code, python_tag
from rqdag.shared.model.mapping import child_maker, parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.model.workflow import Workflow

CHANGE_KINDS = ("code", "settings", "dependencies", "definition")  # "definition": the parts are unknown
NOTE_NAMES = 10  # names a note lists before "and N more"


@dataclass(frozen=True)
class ResumePlan:
    """What a resume keeps, runs again, adds and drops, and why.

    ``why``: for each changed success, what changed (of :data:`CHANGE_KINDS`).
    ``requested``: the tasks asked to run again. ``downstream``: a success that
    runs again because a task it depends on does (changed or requested), to
    that task. ``params``: the run's params before and after. ``restamp``: kept
    successes whose definition hash differs from the new one (kept despite a
    change, or with code that cannot be compared), to the hash they are kept
    under from now on.
    """

    keep: list[str] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    add: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    why: dict[str, list[str]] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)
    downstream: dict[str, str] = field(default_factory=dict)
    params: tuple[dict[str, Any], dict[str, Any]] = field(default_factory=lambda: ({}, {}))
    notes: list[str] = field(default_factory=list)
    nothing_to_resume: bool = False
    restamp: dict[str, str] = field(default_factory=dict)

    @property
    def runs_nothing(self) -> bool:
        """True when no task would run again and no result would be dropped."""
        return not (self.rerun or self.add or self.drop)

    def changed_params(self) -> list[str]:
        """The names of the parameters the resume adds, removes or gives another value."""
        old, new = self.params
        return [k for k in sorted({*old, *new}) if (k in old, old.get(k)) != (k in new, new.get(k))]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (see docs/json.md)."""
        return {
            "keep": self.keep,
            "rerun": self.rerun,
            "changed": self.changed,
            "add": self.add,
            "drop": self.drop,
            "why": self.why,
            "requested": self.requested,
            "downstream": self.downstream,
            "params": {"old": self.params[0], "new": self.params[1]},
            "notes": self.notes,
            "nothing_to_resume": self.nothing_to_resume,
        }


def plan_resume(
    results: Mapping[str, TaskResult],
    old: Workflow,
    new: Workflow,
    *,
    keep_changed: bool = False,
    rerun: Sequence[str] = (),
) -> ResumePlan:
    """Successes whose definition is unchanged stay; everything else runs again.

    A success whose task changed since it ran runs again unless ``keep_changed``
    (it is listed in ``changed`` either way). The ``rerun`` tasks (names of
    ``new``, checked by the caller) run again with everything downstream of
    them, and so does everything downstream of a changed task that runs again.
    """
    old_tasks = {t.name: t for t in old.tasks}
    decision: dict[str, str] = {}  # name -> keep | rerun | add
    why: dict[str, list[str]] = {}
    restamp: dict[str, str] = {}
    unknown: dict[str, list[str]] = {}  # why code could not be compared -> tasks
    for task in new.tasks:
        result = results.get(task.name)
        if task.name not in old_tasks:
            decision[task.name] = "add"
        elif result is None or result.status is not TaskStatus.SUCCESS:
            decision[task.name] = "rerun"
        else:
            verdict = _judge(result, old_tasks[task.name], task, keep_changed)
            decision[task.name] = verdict.decision
            if verdict.changes:
                why[task.name] = verdict.changes
            if verdict.restamp:
                restamp[task.name] = verdict.restamp
            if verdict.unknown:
                unknown.setdefault(verdict.unknown, []).append(task.name)
    asked = set(rerun)
    requested = [t.name for t in new.tasks if t.name in asked]
    seeds = [n for n in why if decision[n] == "rerun"] + requested
    downstream = _cascade(new.tasks, seeds, decision, restamp)
    for name in requested:
        if decision[name] == "keep":
            decision[name] = "rerun"
            restamp.pop(name, None)
    by = {kind: [n for n, d in decision.items() if d == kind] for kind in ("keep", "rerun", "add")}
    children = _children_plan(results, old, new, keep_changed)
    by["keep"] += sorted(n for n, keep in children.items() if keep)
    by["rerun"] += sorted(n for n, keep in children.items() if not keep)
    return ResumePlan(
        keep=by["keep"],
        rerun=by["rerun"],
        changed=list(why),
        add=by["add"],
        drop=sorted(n for n in results if n not in decision and n not in children),
        why=why,
        requested=requested,
        downstream=downstream,
        notes=[_note(reason, names) for reason, names in unknown.items()],
        restamp=restamp,
    )


@dataclass(frozen=True)
class _Verdict:
    """What becomes of one success: kept or run again, what changed, the hash it is kept
    under when that is not the one it has, and why its code could not be compared."""

    decision: str
    changes: list[str] = field(default_factory=list)
    restamp: str = ""
    unknown: str = ""


def _judge(result: TaskResult, old: Task, new: Task, keep_changed: bool) -> _Verdict:
    """The verdict on a success of task ``new`` (``old``: the task as the run stored it)."""
    new_hash = new.definition_hash()
    if result.definition_hash is None or result.definition_hash == new_hash:
        return _Verdict("keep")  # no hash (a result from before hashes were kept), or nothing changed
    unknown = ""
    if result.definition_hash != old.definition_hash():
        changes = ["definition"]  # it ran under another definition than the stored one
    else:
        changes, unknown = _changes(old, new)
    if changes and not keep_changed:
        return _Verdict("rerun", changes, unknown=unknown)
    return _Verdict("keep", changes, restamp=new_hash, unknown=unknown)


def _changes(old: Task, new: Task) -> tuple[list[str], str]:
    """What differs between two definitions of a task, and why the code could not be
    compared (``""`` when it could)."""
    changes = []
    if compare_code(old.code_id, new.code_id) == "changed":
        changes.append("code")
    if old.settings_hash() != new.settings_hash():
        changes.append("settings")
    if set(old.depends_on) != set(new.depends_on):
        changes.append("dependencies")
    if compare_code(old.code_id, new.code_id) != "unknown":
        return changes, ""
    if old.code_id is None:
        return changes, "the run's definition has no hash of it (stored by an older rqdag)"
    if new.code_id is None:
        return changes, "no hash of the code it runs now (no worker published one)"
    tags = f"{python_tag(old.code_id)} then, {python_tag(new.code_id)} now"
    return changes, f"hashed by two Python versions ({tags})"


def _cascade(
    tasks: Iterable[Task], seeds: list[str], decision: dict[str, str], restamp: dict[str, str]
) -> dict[str, str]:
    """Turn every kept success downstream of ``seeds`` into a re-run; each such task to
    the seed it was reached from."""
    dependents: dict[str, list[str]] = {}
    for task in tasks:
        for dep in task.depends_on:
            dependents.setdefault(dep, []).append(task.name)
    reached: dict[str, str] = {}
    seeded = set(seeds)
    for seed in seeds:
        stack = [seed]
        while stack:
            for child in dependents.get(stack.pop(), ()):
                if child in reached or child in seeded:
                    continue
                reached[child] = seed
                stack.append(child)
    out = {}
    for name, seed in reached.items():
        if decision[name] == "keep":
            decision[name] = "rerun"
            restamp.pop(name, None)
            out[name] = seed
    return dict(sorted(out.items()))


def _note(reason: str, names: list[str]) -> str:
    shown = ", ".join(names[:NOTE_NAMES])
    more = f" and {len(names) - NOTE_NAMES} more" if len(names) > NOTE_NAMES else ""
    return f"code not compared for {shown}{more}: {reason}"


def _children_plan(
    results: Mapping[str, TaskResult], old: Workflow, new: Workflow, keep_changed: bool
) -> dict[str, bool]:
    """The results of mapped tasks' children: True for a success to keep (judged as its
    mapped task's own success would be), False for one to set aside (it runs again if the
    new expansion has its KEY again)."""
    mapped = {t.name: t for t in new.tasks if t.map_over is not None}
    if not mapped:
        return {}
    stored = {t.name: t for t in old.tasks}
    makers: dict[str, tuple[Callable[[str, tuple[str, ...]], Task], ...]] = {}
    out: dict[str, bool] = {}
    for name, result in results.items():
        parent = parent_of(name)
        task = mapped.get(parent) if parent is not None else None
        if task is None:
            continue
        prior = stored.get(task.name)
        if result.status is not TaskStatus.SUCCESS or prior is None or prior.map_over is None:
            out[name] = False
            continue
        pair = makers.get(task.name)
        if pair is None:
            pair = makers[task.name] = (child_maker(prior), child_maker(task))
        was = pair[0](name, tuple(prior.depends_on))
        now = pair[1](name, tuple(task.depends_on))
        out[name] = _judge(result, was, now, keep_changed).decision == "keep"
    return out
