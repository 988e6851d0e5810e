"""Checkpoint and resume through the public API: snapshot(), with_snapshot(), save/load."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rqdag import (
    RqdagWarning,
    Task,
    TaskContext,
    TaskResult,
    TaskRunnerBuilder,
    TaskStatus,
    load_snapshot,
    save_snapshot,
)
from rqdag.errors import EncodeError, SnapshotError

from . import tasks_for_tests

WAIT = 3.0


class Counter:
    """A task that counts its calls and returns what it saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def __call__(self, ctx: TaskContext) -> dict[str, Any]:
        with self._lock:
            self.calls[ctx.task] = self.calls.get(ctx.task, 0) + 1
        return {"task": ctx.task, "inputs": dict(ctx.inputs)}


def pipeline(func: Any) -> list[Task]:
    return [
        Task("extract", func),
        Task("transform", func, depends_on=["extract"]),
        Task("load", func, depends_on=["transform"]),
        Task("report", func, depends_on=["load", "extract"]),
    ]


def previous_run() -> dict[str, TaskResult]:
    return {
        "extract": TaskResult.success(data={"rows": [1, 2, 3]}),
        "transform": TaskResult.failure("KeyError: 'id'", error="Traceback ..."),
        "load": TaskResult.skipped("dependency 'transform' failed"),
        "report": TaskResult.cancelled("run cancelled"),
    }


def check_resumed(counter: Counter, results: dict[str, TaskResult]) -> None:
    assert counter.calls == {"transform": 1, "load": 1, "report": 1}, "the success did not run again"
    assert results["extract"].data == {"rows": [1, 2, 3]}
    assert results["transform"].data["inputs"] == {"extract": {"rows": [1, 2, 3]}}
    assert results["report"].data["inputs"]["extract"] == {"rows": [1, 2, 3]}
    assert all(r.status is TaskStatus.SUCCESS for r in results.values())


def test_resume_from_task_results_skips_successes_and_reruns_the_rest() -> None:
    counter = Counter()
    runner = TaskRunnerBuilder().with_snapshot(previous_run()).build()
    results = runner.execute(pipeline(counter))
    check_resumed(counter, results)
    assert results["extract"] == previous_run()["extract"]


def test_resume_from_plain_dicts_as_json_loads_gives_them() -> None:
    raw = json.loads(json.dumps({name: r.to_dict() for name, r in previous_run().items()}))
    assert isinstance(raw["extract"], dict)
    counter = Counter()
    results = TaskRunnerBuilder().with_snapshot(raw).build().execute(pipeline(counter))
    check_resumed(counter, results)


def test_resume_from_a_saved_file(tmp_path: Path) -> None:
    path = save_snapshot(previous_run(), tmp_path / "run.snapshot.json")
    counter = Counter()
    results = TaskRunnerBuilder().with_snapshot(load_snapshot(path)).build().execute(pipeline(counter))
    check_resumed(counter, results)


def test_a_fully_successful_snapshot_runs_nothing() -> None:
    counter = Counter()
    first = TaskRunnerBuilder().build().execute(pipeline(counter))
    assert counter.calls == dict.fromkeys(["extract", "transform", "load", "report"], 1)
    again = TaskRunnerBuilder().with_snapshot(first).build().execute(pipeline(counter))
    assert counter.calls == dict.fromkeys(["extract", "transform", "load", "report"], 1)
    assert again == first


def test_crash_and_resume_round_trip_through_a_file(tmp_path: Path) -> None:
    counter = Counter()
    broken = {"on": True}

    def load(ctx: TaskContext) -> Any:
        if broken["on"]:
            raise OSError("disk full")
        return counter(ctx)

    tasks = pipeline(counter)
    tasks[2] = Task("load", load, depends_on=["transform"])
    runner = TaskRunnerBuilder().build()
    first = runner.execute(tasks)
    assert [first[n].status for n in ("extract", "transform", "load", "report")] == [
        TaskStatus.SUCCESS,
        TaskStatus.SUCCESS,
        TaskStatus.FAILURE,
        TaskStatus.SKIPPED,
    ]
    path = save_snapshot(runner.snapshot(), tmp_path / "snap.json")

    broken["on"] = False
    resumed = TaskRunnerBuilder().with_snapshot(load_snapshot(path)).build().execute(tasks)

    assert counter.calls == {"extract": 1, "transform": 1, "load": 1, "report": 1}
    assert all(r.status is TaskStatus.SUCCESS for r in resumed.values())
    assert resumed["load"].data["inputs"] == {"transform": first["transform"].data}


def test_the_snapshot_never_holds_the_context(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        context: dict[str, Any] = {"lock": threading.Lock(), "socket": sock, "secret": "hunter2"}

        def uses_context(ctx: TaskContext) -> str:
            assert ctx.context is context
            with ctx.context["lock"]:
                return "used"

        runner = TaskRunnerBuilder(context=context).build()
        results = runner.execute([Task("a", uses_context), Task("b", uses_context, depends_on=["a"])])
        snapshot = runner.snapshot()

    assert results["b"].status is TaskStatus.SUCCESS
    assert set(snapshot) == {"a", "b"}
    assert all(isinstance(r, TaskResult) for r in snapshot.values())
    for result in snapshot.values():
        assert set(result.to_dict()) == {"status", "message", "error", "data", "metrics", "definition_hash"}
    path = save_snapshot(snapshot, tmp_path / "snap.json")
    text = path.read_text()
    assert "hunter2" not in text
    assert "socket" not in text
    assert load_snapshot(path) == snapshot


def test_snapshot_during_the_run_from_another_thread(tmp_path: Path) -> None:
    b_running = threading.Event()
    taken = threading.Event()
    during: list[dict[str, TaskResult]] = []
    runner = TaskRunnerBuilder().build()

    def b(ctx: TaskContext) -> str:
        b_running.set()
        assert taken.wait(WAIT)
        return "b"

    def watcher() -> None:
        assert b_running.wait(WAIT)
        during.append(runner.snapshot())
        taken.set()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    results = runner.execute(
        [
            Task("a", lambda ctx: "a"),
            Task("b", b, depends_on=["a"]),
            Task("c", lambda ctx: "c", depends_on=["b"]),
        ]
    )
    thread.join(WAIT)

    (snapshot,) = during
    assert set(snapshot) == {"a"}, "b is running and c waiting: neither has a result yet"
    assert snapshot["a"] == results["a"]
    save_snapshot(snapshot, tmp_path / "mid-run.json")
    assert load_snapshot(tmp_path / "mid-run.json") == snapshot
    assert runner.snapshot() == results


def test_snapshots_polled_during_a_run_are_consistent() -> None:
    runner = TaskRunnerBuilder().build()
    gate = threading.Event()
    tasks = [Task("t0", lambda ctx: gate.wait(WAIT))]
    for i in range(1, 40):
        deps = [f"t{i - 1}"] + ([f"t{i // 2}"] if i // 2 != i - 1 else [])
        tasks.append(Task(f"t{i}", lambda ctx: ctx.task, depends_on=deps))
    deps_of = {t.name: set(t.depends_on) for t in tasks}
    seen: list[dict[str, TaskResult]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.append(runner.snapshot())
            if len(seen) == 20:
                gate.set()
            if gate.is_set():
                time.sleep(0.001)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        results = runner.execute(tasks, concurrency=3)
    finally:
        stop.set()
        thread.join(WAIT)
    assert len(seen) >= 20
    previous: dict[str, TaskResult] = {}
    for snap in seen:
        assert all(isinstance(r, TaskResult) for r in snap.values())
        for name in snap:
            assert deps_of[name] <= set(snap), f"{name} finished before its dependencies"
        assert all(snap[n] == r for n, r in previous.items()), "results only ever get added"
        previous = snap
    assert all(r.status is TaskStatus.SUCCESS for r in results.values())


def test_snapshot_before_and_after_execute() -> None:
    snap = {"a": TaskResult.success(data=1)}
    runner = TaskRunnerBuilder().with_snapshot(snap).build()
    assert runner.snapshot() == snap
    results = runner.execute(
        [Task("a", tasks_for_tests.answer), Task("b", tasks_for_tests.add_inputs, ["a"])]
    )
    assert runner.snapshot() == results
    assert results["b"].data == 1


def test_snapshot_entries_for_unknown_tasks_warn_and_are_ignored() -> None:
    snap = {
        "a": TaskResult.success(data=1),
        "retired_task": TaskResult.success(),
        "other_gone": TaskResult.failure("x"),
    }
    runner = TaskRunnerBuilder().with_snapshot(snap).build()
    with pytest.warns(RqdagWarning, match="other_gone, retired_task"):
        results = runner.execute(
            [Task("a", tasks_for_tests.answer), Task("b", tasks_for_tests.add_inputs, ["a"])]
        )
    assert set(results) == {"a", "b"}
    assert results["b"].data == 1


def test_with_snapshot_rejects_an_unknown_status_naming_the_task() -> None:
    with pytest.raises(SnapshotError, match=r"task 'a'.*unknown status 'done'"):
        TaskRunnerBuilder().with_snapshot({"a": {"status": "done"}})


@pytest.mark.parametrize(
    "bad", [["a"], "a", None, {"a": "success"}, {"a": {"status": "success", "metrics": 5}}]
)
def test_with_snapshot_rejects_what_is_not_a_snapshot(bad: Any) -> None:
    with pytest.raises(SnapshotError):
        TaskRunnerBuilder().with_snapshot(bad)


def test_a_non_json_return_value_fails_the_task_naming_the_value(tmp_path: Path) -> None:
    class Opaque:
        pass

    tasks = [
        Task("returns_set", lambda ctx: {1, 2}),
        Task("returns_object", lambda ctx: {"nested": [Opaque()]}),
        Task("after", lambda ctx: 1, depends_on=["returns_set"]),
    ]
    results = TaskRunnerBuilder().build().execute(tasks)
    bad_set = results["returns_set"]
    assert bad_set.status is TaskStatus.FAILURE
    assert "task 'returns_set'" in (bad_set.message or "")
    assert "set" in (bad_set.message or "")
    assert bad_set.data is None
    bad_obj = results["returns_object"]
    assert bad_obj.status is TaskStatus.FAILURE
    assert "task 'returns_object'" in (bad_obj.message or "")
    assert "Opaque" in (bad_obj.message or "")
    assert results["after"] == TaskResult.skipped("dependency 'returns_set' failed")
    path = save_snapshot(results, tmp_path / "snap.json")
    assert load_snapshot(path) == results, "the failed results themselves are JSON"


def test_save_snapshot_refuses_non_json_data(tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match="snapshot"):
        save_snapshot({"a": TaskResult.success(data=object())}, tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []
