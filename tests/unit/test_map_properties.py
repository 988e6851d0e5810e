"""Property-based tests of mapped tasks in TaskStateManager: random DAGs with maps, random snapshots.

Plain tasks return a list of small integers; a mapped task's children return
their item (so a map over a mapped task maps over the same items) and fail for
the items of a "bad" set. Properties: every child that starts belongs to its
mapped task's expansion, once; an aggregate that succeeds holds its children's
data in item order; and a resumed run never starts again a child whose success
its snapshot holds when the expansion has the same KEY again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rqdag.coordinator.state import TaskStateManager
from rqdag.shared.model.mapping import parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import TaskStatus

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None)


def noop(ctx: object) -> None:
    """Never called: the driver decides the outcomes."""


def key_of(item: Any) -> str:
    return f"k{item}"


@dataclass(frozen=True)
class Scenario:
    tasks: list[Task]
    lists: dict[str, list[int]]  # what each plain task returns
    bad: frozenset[int]  # items whose children fail


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(min_value=1, max_value=8))
    tasks: list[Task] = []
    lists: dict[str, list[int]] = {}
    for i in range(n):
        picks = draw(st.lists(st.booleans(), min_size=i, max_size=i))
        deps = [f"t{j}" for j, picked in enumerate(picks) if picked]
        over = draw(st.sampled_from(deps)) if deps and draw(st.booleans()) else None
        keyed = draw(st.booleans())
        tasks.append(
            Task(
                f"t{i}",
                noop,
                depends_on=deps,
                map_over=over,
                map_key=key_of if over is not None and keyed else None,
                max_items=draw(st.sampled_from([3, 10])) if over is not None else 10,
                continue_on_error=draw(st.booleans()),
            )
        )
        if over is None:
            lists[f"t{i}"] = draw(st.lists(st.integers(0, 6), max_size=5))
    return Scenario(tasks, lists, frozenset(draw(st.sets(st.integers(0, 6), max_size=2))))


def run(sm: TaskStateManager, scenario: Scenario, rng: random.Random) -> list[str]:
    """Drive to the end, completing attempts in a random order; the names started."""
    started: list[str] = []
    in_flight: list[tuple[str, str, Any]] = []
    for _ in range(10_000):
        for d in sm.take_ready(0.0, 1000):
            started.append(d.task.name)
            in_flight.append((d.task.name, d.token, d.item))
        if not in_flight:
            break
        name, token, item = in_flight.pop(rng.randrange(len(in_flight)))
        sm.complete(name, token, outcome(scenario, name, item), 0.0)
    assert sm.is_finished()
    return started


def outcome(scenario: Scenario, name: str, item: Any) -> TaskResult:
    if parent_of(name) is None:
        return TaskResult.success(list(scenario.lists[name]))
    if item in scenario.bad:
        return TaskResult.failure(f"bad item {item}")
    return TaskResult.success(item)


def check_run(sm: TaskStateManager, scenario: Scenario, started: list[str], *, resumed: bool = False) -> None:
    """``resumed``: a child kept by index (a map without key) may hold another item's data."""
    snapshot = sm.snapshot()
    assert len(started) == len(set(started)), "an attempt started twice (no retries are allowed)"
    for task in scenario.tasks:
        if task.map_over is None:
            continue
        children = sm.children_of(task.name)
        aggregate = snapshot[task.name]
        for child in children:
            assert child in snapshot, f"{child} has no result"
        if aggregate.status is TaskStatus.SUCCESS and children:
            assert aggregate.data == [snapshot[c].data for c in children]
            source = snapshot[task.map_over]
            if not resumed or task.map_key is not None:
                assert aggregate.data == source.data, "children return their item, in item order"
    for name in started:
        parent = parent_of(name)
        if parent is not None:
            assert name in sm.children_of(parent)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), seed=st.integers(0, 1000))
def test_random_dags_with_maps_run_each_child_once_and_aggregate_in_order(
    scenario: Scenario, seed: int
) -> None:
    sm = TaskStateManager(scenario.tasks)
    started = run(sm, scenario, random.Random(seed))
    check_run(sm, scenario, started)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), seed=st.integers(0, 1000), data=st.data())
def test_resume_never_reruns_a_successful_child_of_the_same_key(
    scenario: Scenario, seed: int, data: st.DataObject
) -> None:
    rng = random.Random(seed)
    first = TaskStateManager(scenario.tasks)
    run(first, scenario, rng)
    snapshot = first.snapshot()
    names = sorted(snapshot)
    picked = data.draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    kept = {name: snapshot[name] for name in picked}
    # the sources give their items in another order this time; the bad items are fixed
    shuffled = {name: rng.sample(items, len(items)) for name, items in scenario.lists.items()}
    again = Scenario(scenario.tasks, shuffled, frozenset())
    second = TaskStateManager(scenario.tasks)
    second.hydrate(kept)
    started = run(second, again, rng)
    check_run(second, again, started, resumed=True)
    final = second.snapshot()
    for name, result in kept.items():
        if result.status is not TaskStatus.SUCCESS:
            continue
        assert name not in started, f"{name} succeeded in the snapshot and ran again"
        parent = parent_of(name)
        if parent is None or name in second.children_of(parent):
            assert final[name] == result, f"{name} lost its kept success"
