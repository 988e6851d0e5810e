"""The job contract: what the coordinator enqueues is what the worker parses, field for field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from rq.serializers import JSONSerializer

from rqdag import Retry, Task
from rqdag.coordinator.dispatch import DispatchRequest
from rqdag.coordinator.rq_jobs import rq_job_data
from rqdag.errors import RqdagError
from rqdag.shared.model.job import RUN_TASK, TaskJob
from rqdag.shared.store.keys import job_id
from rqdag.worker.job import run_task
from tests.unit.tasks_for_tests import path_of

WORKFLOW = "nightly"
DISPATCHED_AT = 1_790_000_000.25
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def job_data(request: DispatchRequest) -> Any:
    """The RQ job the dispatcher builds for ``request``, with every optional field given."""
    return rq_job_data(request, workflow=WORKFLOW, traceparent=TRACEPARENT, dispatched_at=DISPATCHED_AT)


def full_task(func: str = "answer") -> Task:
    """A task ``load`` running ``func`` (of tests.unit.tasks_for_tests), with every field the job
    carries set away from its default."""
    return Task(
        "load",
        path_of(func),
        depends_on=["extract", "clean"],
        retry=Retry(attempts=3, delay_s=1.0, on=(ConnectionRefusedError,)),
        timeout_s=2.5,
        condition=path_of("always_true"),
        at_most_once=True,
        queue="contract",
    )


def expected_fields(request: DispatchRequest) -> dict[str, Any]:
    """Each TaskJob field as the dispatch request says it must arrive."""
    task = request.task
    return {
        "run_id": request.run_id,
        "task": task.name,
        "token": request.token,
        "attempt": request.attempt,
        "func": task.func_path,
        "condition": task.condition_path,
        "depends_on": tuple(task.depends_on),
        "timeout_s": task.timeout_s,
        "retries": task.retry.attempts,
        "at_most_once": task.at_most_once,
        "definition_hash": task.definition_hash(),
        "workflow": WORKFLOW,
        "dispatched_at": DISPATCHED_AT,
        "traceparent": TRACEPARENT,
        "item": request.item,
        "mapped_inputs": request.mapped_inputs,
        "lazy_inputs": request.lazy_inputs,
        "failures": request.failures,
        "retry_on": task.retry.on_names,
    }


def over_the_wire(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs as a worker gets them: through RQ's JSON serializer."""
    decoded: dict[str, Any] = JSONSerializer.loads(JSONSerializer.dumps(kwargs))  # type: ignore[no-untyped-call]
    return decoded


def test_a_job_built_the_dispatchers_way_parses_back_field_for_field_on_the_worker() -> None:
    request = DispatchRequest(
        "run-1",
        full_task(),
        attempt=2,
        token="2-abc",
        inputs={},
        params={},
        item={"partition": "p1"},
        mapped_inputs=("clean",),
        lazy_inputs=("extract",),
        failures=1,
    )
    data = job_data(request)
    job = TaskJob.from_kwargs(over_the_wire(data.kwargs))

    expected = expected_fields(request)
    assert {f.name for f in dataclasses.fields(TaskJob)} == set(expected), "a field the test does not check"
    for field in dataclasses.fields(TaskJob):
        if field.default is not dataclasses.MISSING:
            assert expected[field.name] != field.default, f"{field.name} left at its default proves nothing"
    assert dataclasses.asdict(job) == expected
    assert data.func == RUN_TASK
    assert data.job_id == job_id("run-1", "load", 2)
    assert data.description == "rqdag run-1 load #2"


def test_the_job_function_named_in_the_contract_is_the_workers() -> None:
    assert f"{run_task.__module__}.{run_task.__qualname__}" == RUN_TASK


def test_a_task_with_the_defaults_round_trips_too() -> None:
    request = DispatchRequest("run-1", Task("solo", path_of("answer")), 1, "1-x", inputs={}, params={})
    job = TaskJob.from_kwargs(over_the_wire(job_data(request).kwargs))
    assert dataclasses.asdict(job) == expected_fields(request)
    assert job.condition is None and job.timeout_s is None and job.depends_on == ()


def test_a_job_of_a_function_without_an_import_path_is_refused_before_it_is_sent() -> None:
    def local(ctx: Any) -> None:
        return None

    request = DispatchRequest("run-1", Task("inline", local), 1, "1-x", inputs={}, params={})
    with pytest.raises(RqdagError, match=r"task 'inline'.*cannot be imported by path"):
        rq_job_data(request)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("token", None, "a non-empty string"),
        ("func", "", "a non-empty string"),
        ("attempt", "1", "an integer >= 0"),
        ("retries", None, "an integer >= 0"),
        ("failures", -1, "an integer >= 0"),
        ("condition", 3, "a string or null"),
        ("depends_on", "a", "a list of task names"),
        ("lazy_inputs", [1], "a list of task names"),
        ("retry_on", ["m:E", 2], "a list of exception names"),
        ("timeout_s", 0, "a number > 0 or null"),
        ("dispatched_at", True, "a number > 0 or null"),
        ("at_most_once", "yes", "true or false"),
    ],
)
def test_a_malformed_field_is_refused_in_the_words_of_its_kind(field: str, value: Any, expected: str) -> None:
    kwargs = TaskJob(run_id="r", task="t", token="k", attempt=1, func="m:f").to_kwargs()
    kwargs[field] = value
    with pytest.raises(RqdagError) as info:
        TaskJob.from_kwargs(kwargs)
    assert str(info.value) == (
        f"malformed rqdag task job (run 'r', task 't'): field '{field}' must be {expected}, got {value!r}"
    )


def test_missing_fields_read_as_their_defaults_and_an_empty_list_as_none() -> None:
    kwargs = {"run_id": "r", "task": "t", "token": "k", "attempt": 0, "func": "m:f", "depends_on": ""}
    assert TaskJob.from_kwargs(kwargs) == TaskJob(run_id="r", task="t", token="k", attempt=0, func="m:f")
    with pytest.raises(RqdagError, match="field 'attempt' must be an integer >= 0, got None"):
        TaskJob.from_kwargs({k: v for k, v in kwargs.items() if k != "attempt"})
