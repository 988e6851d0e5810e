"""The resume plan: what stays, what runs again, and why (code, settings, dependencies, downstream)."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from rqdag import Retry, Task, TaskResult, Workflow
from rqdag.shared.model.definition import decode_definition, encode_definition
from rqdag.shared.model.resume_plan import ResumePlan, plan_resume
from tests.unit.tasks_for_tests import path_of

CODE = "cpython-311:aaaaaaaaaaaaaaaa"
EDITED = "cpython-311:bbbbbbbbbbbbbbbb"


def task(name: str, *deps: str, code: str | None = CODE, **settings: Any) -> Task:
    return Task(name, path_of("answer"), depends_on=deps, code_hash=code, **settings)


def diamond(**changes: dict[str, Any]) -> Workflow:
    """a -> b -> d, a -> c -> d, and e on its own; ``changes`` by task name."""
    tasks = [task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"), task("e")]
    return Workflow("diamond", [dataclasses.replace(t, **changes.get(t.name, {})) for t in tasks])


def succeeded(workflow: Workflow) -> dict[str, TaskResult]:
    return {
        t.name: dataclasses.replace(TaskResult.success(t.name), definition_hash=t.definition_hash())
        for t in workflow.tasks
    }


def test_nothing_changed_keeps_every_success() -> None:
    plan = plan_resume(succeeded(diamond()), diamond(), diamond())
    assert plan.keep == ["a", "b", "c", "d", "e"] and plan.rerun == [] and plan.runs_nothing
    assert plan.why == {} and plan.restamp == {}


def test_each_kind_of_change_is_named_and_reruns_what_is_downstream() -> None:
    old = diamond()
    new = diamond(
        b={"code_hash": EDITED},
        c={"retry": Retry(3)},
        e={"depends_on": ("a",), "code_hash": EDITED},
    )
    plan = plan_resume(succeeded(old), old, new)
    assert plan.why == {"b": ["code"], "c": ["settings"], "e": ["code", "dependencies"]}
    assert plan.changed == ["b", "c", "e"]
    assert plan.keep == ["a"] and plan.rerun == ["b", "c", "d", "e"]
    assert plan.downstream == {"d": "b"}, "d runs again because b (and c) do"


def test_keep_changed_keeps_them_under_the_new_hash_and_reruns_nothing_downstream() -> None:
    old = diamond()
    new = diamond(b={"code_hash": EDITED})
    plan = plan_resume(succeeded(old), old, new, keep_changed=True)
    assert plan.keep == ["a", "b", "c", "d", "e"] and plan.rerun == []
    assert plan.changed == ["b"] and plan.why == {"b": ["code"]} and plan.downstream == {}
    assert plan.restamp == {"b": new.tasks[1].definition_hash()}
    # kept under the new hash, b is unchanged from then on
    restamped = {
        **succeeded(old),
        "b": dataclasses.replace(succeeded(old)["b"], definition_hash=plan.restamp["b"]),
    }
    assert plan_resume(restamped, new, new).keep == ["a", "b", "c", "d", "e"]


def test_rerun_requests_run_those_tasks_and_everything_downstream() -> None:
    old = diamond()
    results = succeeded(old)
    results["c"] = TaskResult.failure("boom")
    plan = plan_resume(results, old, old, rerun=["b", "e"])
    assert plan.requested == ["b", "e"]
    assert plan.rerun == ["b", "c", "d", "e"] and plan.keep == ["a"]
    assert plan.downstream == {"d": "b"}, "c runs again for its own failure"
    everything = plan_resume(results, old, old, rerun=["a"])
    assert everything.keep == ["e"] and everything.downstream == {"b": "a", "d": "a"}


def test_code_that_cannot_be_compared_is_kept_and_said_so() -> None:
    old = diamond(a={"code_hash": None}, b={"code_hash": "cpython-312:cccccccccccccccc"})
    new = diamond(b={"code_hash": EDITED})
    plan = plan_resume(succeeded(old), old, new)
    assert plan.keep == ["a", "b", "c", "d", "e"] and plan.why == {}
    assert set(plan.restamp) == {"a", "b"}
    assert plan.notes == [
        "code not compared for a: the run's definition has no hash of it (stored by an older rqdag)",
        "code not compared for b: hashed by two Python versions (cpython-312 then, cpython-311 now)",
    ]


def test_a_result_of_another_definition_is_a_change_of_definition() -> None:
    old = diamond()
    results = succeeded(old)
    results["a"] = dataclasses.replace(results["a"], definition_hash="0123456789abcdef")
    results["b"] = dataclasses.replace(results["b"], definition_hash=None)  # from before hashes were kept
    plan = plan_resume(results, old, old)
    assert plan.why == {"a": ["definition"]} and plan.rerun == ["a", "b", "c", "d"]
    assert plan.downstream == {"b": "a", "c": "a", "d": "a"}


def test_a_stored_definition_of_format_2_is_planned_against_never_crashed_on() -> None:
    current = Workflow("w", [Task("a", path_of("answer")), Task("b", path_of("answer"), depends_on=["a"])])
    document = orjson.loads(encode_definition(current))
    document["format"] = 2
    for profile in document["profiles"]:
        del profile["version"], profile["code"]
    stored = decode_definition(orjson.dumps(document), run_id="r1")
    assert [t.code_id for t in stored.tasks] == [None, None]
    results = succeeded(stored)  # hashes as a format-2 run's results carry them
    deployed = Workflow("w", [dataclasses.replace(t, code_hash=CODE) for t in stored.tasks])
    plan = plan_resume(results, stored, deployed)
    assert plan.keep == ["a", "b"] and plan.notes[0].startswith("code not compared for a, b: ")
    moved = Workflow("w", [dataclasses.replace(t, queue="gpu", code_hash=CODE) for t in stored.tasks])
    assert plan_resume(results, stored, moved).why == {"a": ["settings"], "b": ["settings"]}


def test_versions_decide_instead_of_the_code() -> None:
    old = diamond(a={"version": "1"})
    same_version = diamond(a={"version": "1", "code_hash": EDITED})
    assert plan_resume(succeeded(old), old, same_version).rerun == []
    bumped = diamond(a={"version": "2"})
    assert plan_resume(succeeded(old), old, bumped).why == {"a": ["code"]}


def test_params_changes_and_the_json_form() -> None:
    plan = dataclasses.replace(
        ResumePlan(), params=({"n": 1, "gone": None, "same": 2}, {"n": 2, "same": 2, "new": 3})
    )
    assert plan.changed_params() == ["gone", "n", "new"]
    assert plan.to_dict() == {
        "keep": [],
        "rerun": [],
        "changed": [],
        "add": [],
        "drop": [],
        "why": {},
        "requested": [],
        "downstream": {},
        "params": {"old": {"n": 1, "gone": None, "same": 2}, "new": {"n": 2, "same": 2, "new": 3}},
        "notes": [],
        "nothing_to_resume": False,
    }
