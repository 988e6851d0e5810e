"""Property-based tests of TaskStateManager on random DAGs, snapshots and task outcomes.

Each scenario fixes, per task, what every attempt returns; the final status of
every task is then fully determined, whatever order the driver completes
attempts in, so a small reference model computes the expected results.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from rqdag.coordinator.phases import Dispatch, Phase
from rqdag.coordinator.state import TaskStateManager
from rqdag.shared.model.definition import decode_table, encode_definition
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Retry, Task
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.model.workflow import Workflow

STATUSES = [TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.SKIPPED, TaskStatus.CANCELLED]
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None)
SMALLER_SETTINGS = settings(max_examples=80, deadline=None, database=None)


def noop(ctx: object) -> None:
    """Never called: the driver decides the outcomes."""


@dataclass(frozen=True)
class Spec:
    """What one task is and what each of its attempts returns."""

    name: str
    deps: tuple[str, ...]
    priority: int
    continue_on_error: bool
    retries: int
    retry_delay: float
    failing_attempts: int
    final: TaskStatus
    snapshot: TaskStatus | None

    def task(self) -> Task:
        return Task(
            self.name,
            noop,
            depends_on=self.deps,
            priority=self.priority,
            continue_on_error=self.continue_on_error,
            retry=Retry(attempts=self.retries, delay_s=self.retry_delay),
        )

    def outcome(self, attempt: int) -> TaskResult:
        status = TaskStatus.FAILURE if attempt <= self.failing_attempts else self.final
        return TaskResult(status, message=f"{self.name} attempt {attempt}", data=f"{self.name}@{attempt}")

    def snapshot_result(self) -> TaskResult | None:
        if self.snapshot is None:
            return None
        return TaskResult(self.snapshot, message="from snapshot", data={"snap": self.name})


@st.composite
def scenarios(draw: st.DrawFn) -> list[Spec]:
    n = draw(st.integers(min_value=1, max_value=12))
    specs = []
    for i in range(n):
        picks = draw(st.lists(st.booleans(), min_size=i, max_size=i))
        deps = tuple(f"t{j}" for j, picked in enumerate(picks) if picked)
        specs.append(
            Spec(
                name=f"t{i}",
                deps=deps,
                priority=draw(st.integers(-2, 2)),
                continue_on_error=draw(st.booleans()),
                retries=draw(st.integers(0, 2)),
                retry_delay=draw(st.sampled_from([0.0, 1.0, 2.5])),
                failing_attempts=draw(st.integers(0, 3)),
                final=draw(st.sampled_from(STATUSES)),
                snapshot=draw(st.none() | st.sampled_from(STATUSES)),
            )
        )
    return specs


@dataclass
class Expected:
    status: TaskStatus
    runs: int
    kept: bool


def reference(specs: list[Spec], keep_all: bool) -> dict[str, Expected]:
    """The results a correct state machine must reach, computed in definition (topological) order."""
    by_name = {s.name: s for s in specs}
    out: dict[str, Expected] = {}
    for spec in specs:
        if spec.snapshot is not None and (keep_all or spec.snapshot is TaskStatus.SUCCESS):
            out[spec.name] = Expected(spec.snapshot, 0, kept=True)
            continue
        if any(not satisfies(out[d].status, by_name[d]) for d in spec.deps):
            out[spec.name] = Expected(TaskStatus.SKIPPED, 0, kept=False)
            continue
        attempt = 1
        while spec.outcome(attempt).status is TaskStatus.FAILURE and attempt <= spec.retries:
            attempt += 1
        out[spec.name] = Expected(spec.outcome(attempt).status, attempt, kept=False)
    return out


def satisfies(status: TaskStatus, dep: Spec) -> bool:
    return status is TaskStatus.SUCCESS or (status is TaskStatus.FAILURE and dep.continue_on_error)


def check_dispatch(sm: TaskStateManager, d: Dispatch, by_name: dict[str, Spec], runs: dict[str, int]) -> None:
    """Whatever starts has every dependency satisfied and sees exactly their data."""
    expected_inputs = {}
    for dep in d.task.depends_on:
        result = sm.result(dep)
        assert result is not None, f"{d.task.name} started before {dep} finished"
        assert satisfies(result.status, by_name[dep]), f"{d.task.name} started after {dep} {result.status}"
        if result.status is TaskStatus.SUCCESS:
            expected_inputs[dep] = result.data
    assert d.inputs == expected_inputs
    assert d.attempt == runs.get(d.task.name, 0) + 1


def check_priority(sm: TaskStateManager, batch: list[Dispatch], specs: list[Spec]) -> None:
    """Nothing left waiting in the ready queue outranks a task that was just started."""
    if not batch:
        return
    lowest_started = min(d.task.priority for d in batch)
    for spec in specs:
        if sm.phase(spec.name) is Phase.READY:
            assert spec.priority <= lowest_started


def run_scenario(
    data: st.DataObject, specs: list[Spec], sm: TaskStateManager, limit: int, cancel_after: int | None = None
) -> tuple[dict[str, int], list[Dispatch]]:
    """Drive the state machine: start what is ready, complete in-flight attempts in a drawn order."""
    by_name = {s.name: s for s in specs}
    runs: dict[str, int] = {}
    in_flight: list[Dispatch] = []
    now = 0.0
    steps = 0
    while not sm.is_finished():
        if cancel_after is not None and steps == cancel_after:
            return runs, in_flight
        steps += 1
        batch = sm.take_ready(now, limit - len(in_flight))
        check_priority(sm, batch, specs)
        for d in batch:
            check_dispatch(sm, d, by_name, runs)
            runs[d.task.name] = d.attempt
        in_flight += batch
        if not in_flight:
            wake = sm.next_wakeup()
            assert wake is not None and wake > now, "nothing in flight, nothing due: stuck"
            now = wake
            continue
        d = in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1), label="complete"))
        sm.complete(d.task.name, d.token, by_name[d.task.name].outcome(d.attempt), now)
    return runs, in_flight


@PROPERTY_SETTINGS
@given(
    specs=scenarios(),
    keep_all=st.booleans(),
    limit=st.integers(1, 4),
    ghosts=st.booleans(),
    stored=st.booleans(),
    data=st.data(),
)
def test_random_dag_random_snapshot_runs_to_the_reference_results(
    specs: list[Spec], keep_all: bool, limit: int, ghosts: bool, stored: bool, data: st.DataObject
) -> None:
    """``stored``: the manager is built as a coordinator builds it, from the stored definition's
    table with the snapshot in one pass, instead of from Task objects and :meth:`hydrate`."""
    snapshot = {s.name: r for s in specs if (r := s.snapshot_result()) is not None}
    if ghosts:
        snapshot["ghost"] = TaskResult.success(data="boo")
    tasks = [s.task() for s in specs]
    if stored:
        table = decode_table(encode_definition(Workflow("stored", tasks)), run_id="property")
        sm = TaskStateManager(table, snapshot=snapshot, keep_all=keep_all)
    else:
        sm = TaskStateManager(tasks)
        assert sm.hydrate(snapshot, keep_all=keep_all) == (["ghost"] if ghosts else [])

    runs, _ = run_scenario(data, specs, sm, limit)

    expected = reference(specs, keep_all)
    results = sm.snapshot()
    assert sm.is_finished()
    assert set(results) == {s.name for s in specs}, "every task is terminal, nothing else is reported"
    assert {n: r.status for n, r in results.items()} == {n: e.status for n, e in expected.items()}
    assert runs == {n: e.runs for n, e in expected.items() if e.runs}
    for spec in specs:
        result = results[spec.name]
        if expected[spec.name].kept:
            assert result is snapshot[spec.name], "a kept snapshot entry is reported as it was"
            assert spec.name not in runs
        elif spec.name in runs:
            assert result.data == f"{spec.name}@{runs[spec.name]}"
            assert result.metrics.attempt == runs[spec.name]
        else:
            check_skip_names_a_blocking_dependency(spec, result, results, {s.name: s for s in specs})
    assert sm.running_count == 0
    assert sm.next_wakeup() is None


def check_skip_names_a_blocking_dependency(
    spec: Spec, result: TaskResult, results: dict[str, TaskResult], by_name: dict[str, Spec]
) -> None:
    assert result.status is TaskStatus.SKIPPED
    blocking = [d for d in spec.deps if not satisfies(results[d].status, by_name[d])]
    assert blocking, f"{spec.name} was skipped though every dependency is satisfied"
    verbs = {
        TaskStatus.FAILURE: "failed",
        TaskStatus.SKIPPED: "was skipped",
        TaskStatus.CANCELLED: "was cancelled",
    }
    assert result.message in {f"dependency '{d}' {verbs[results[d].status]}" for d in blocking}


@SMALLER_SETTINGS
@given(specs=scenarios(), data=st.data())
def test_no_snapshot_success_runs_and_its_data_reaches_dependents(
    specs: list[Spec], data: st.DataObject
) -> None:
    snapshot = {s.name: r for s in specs if (r := s.snapshot_result()) is not None}
    kept = {n for n, r in snapshot.items() if r.status is TaskStatus.SUCCESS}
    sm = TaskStateManager([s.task() for s in specs])
    sm.hydrate(snapshot)
    seen_inputs: dict[str, dict[str, object]] = {}
    by_name = {s.name: s for s in specs}
    now = 0.0
    while not sm.is_finished():
        batch = sm.take_ready(now, 1000)
        if not batch:
            wake = sm.next_wakeup()
            assert wake is not None and wake > now, "nothing ready, nothing due: stuck"
            now = wake
            continue
        for d in batch:
            assert d.task.name not in kept
            seen_inputs[d.task.name] = dict(d.inputs)
            sm.complete(d.task.name, d.token, by_name[d.task.name].outcome(d.attempt), now)
    for name, inputs in seen_inputs.items():
        for dep in by_name[name].deps:
            if dep in kept:
                assert inputs[dep] == {"snap": dep}
    for name in kept:
        assert sm.result(name) is snapshot[name]


@SMALLER_SETTINGS
@given(specs=scenarios(), limit=st.integers(1, 4), cancel_after=st.integers(0, 15), data=st.data())
def test_cancel_all_at_any_moment_leaves_every_task_terminal(
    specs: list[Spec], limit: int, cancel_after: int, data: st.DataObject
) -> None:
    snapshot = {s.name: r for s in specs if (r := s.snapshot_result()) is not None}
    sm = TaskStateManager([s.task() for s in specs])
    sm.hydrate(snapshot)
    _, in_flight = run_scenario(data, specs, sm, limit, cancel_after=cancel_after)
    before = sm.snapshot()
    running = sm.running()

    returned = sm.cancel_all("stop")

    assert returned == running
    assert sorted(returned) == sorted((d.task.name, d.token) for d in in_flight)
    results = sm.snapshot()
    assert sm.is_finished()
    assert set(results) == {s.name for s in specs}
    for name, result in results.items():
        if name in before:
            assert result is before[name]
        else:
            assert result.status is TaskStatus.CANCELLED
            if any(n == name for n, _ in running):
                assert result.message == "stop while running"
            elif result.metrics.attempt:
                assert result.message == "stop while waiting to retry"
            else:
                assert result.message == "cancelled before it started: stop"
    for d in in_flight:
        assert sm.complete(d.task.name, d.token, TaskResult.success(), 0.0).value == "stale"
