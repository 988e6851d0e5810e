"""A fleet of unlike workers on one queue: jobs reach a worker that can run them, or wait saying why.

Real processes throughout: a redis-server, an ``rqdag coordinator``, ``rqdag
worker`` processes with different ``--tasks`` modules (written to a temp dir),
runs submitted with ``rqdag submit``; ``rqdag workers`` reads the registry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import redis

from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.workers import live_workers
from tests.support import REPO
from tests.support.processes import Procs, rqdag_command
from tests.support.wait import wait_for, wait_until

TASK_BODY = """
import os, json

def _note(ctx):
    with open(os.environ["RQDAG_TEST_LEDGER"], "a") as out:
        out.write(json.dumps({"kind": "task", "run": ctx.run_id, "task": ctx.task,
                              "attempt": ctx.attempt, "pid": os.getpid(), "module": __name__}) + "\\n")
"""

TASKS = TASK_BODY + textwrap.dedent("""
    import time
    from rqdag import Workflow

    flow = Workflow("tour")

    @flow.task()
    def extract(ctx):
        _note(ctx)
        return 1

    @flow.task(depends_on=["extract"])
    def load(ctx):
        _note(ctx)
        return ctx.inputs["extract"] + 1

    def block(ctx):
        _note(ctx)
        time.sleep(float(ctx.params.get("seconds", 30)))

    blocking = Workflow("blocking")
    blocking.task(name="block")(block)
""")

AMO = TASK_BODY + textwrap.dedent("""
    from rqdag import Workflow

    flow = Workflow("amo")

    @flow.task()
    def quote(ctx):
        _note(ctx)
        return 5

    @flow.task(depends_on=["quote"], at_most_once=True)
    def charge(ctx):
        _note(ctx)
        return {"charged": ctx.inputs["quote"], "key": ctx.idempotency_key}
""")


def _modules(root: Path) -> Path:
    package = root / "mods" / "mytour"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(TASKS)
    (package / "amo.py").write_text(AMO)
    return root / "mods"


def _fleet(tmp_path: Path) -> Procs:
    mods = _modules(tmp_path)
    return Procs(tmp_path, {"PYTHONPATH": os.pathsep.join([str(mods), str(REPO)])})


def _cli(procs: Procs, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        rqdag_command(*args), env=procs.env(), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc


def _status(procs: Procs, url: str, run_id: str) -> dict[str, Any]:
    return dict(json.loads(_cli(procs, "status", run_id, "--redis", url, "--json").stdout))


def _wait_done(procs: Procs, url: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: doc if (doc := _status(procs, url, run_id))["run"]["status"] == "succeeded" else None,
        timeout,
        f"run {run_id} succeeded",
    )


def _worker(procs: Procs, url: str, tasks: str, name: str, *extra: str) -> subprocess.Popen[bytes]:
    return procs.worker(url, "--name", name, *extra, name=name, tasks=tasks)


def _wait_workers(conn: redis.Redis, names: set[str]) -> None:
    wait_until(lambda: {w.name for w in live_workers(conn)} >= names, 30, f"workers {names} registered")


def test_unlike_workers_on_one_queue_each_get_only_what_they_can_run(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    with _fleet(tmp_path) as procs:
        pids = {
            "tasks-1": _worker(procs, redis_url, "mytour.tasks", "tasks-1").pid,
            "tasks-2": _worker(procs, redis_url, "mytour.tasks", "tasks-2").pid,
            "amo-1": _worker(procs, redis_url, "mytour.amo", "amo-1").pid,
        }
        _wait_workers(redis_conn, set(pids))
        procs.coordinator(redis_url)
        for target, run_id in (("mytour.amo:flow", "amo-run"), ("mytour.tasks:flow", "tour-run")):
            _cli(procs, "submit", target, "--redis", redis_url, "--run-id", run_id)

        amo = _wait_done(procs, redis_url, "amo-run")
        tour = _wait_done(procs, redis_url, "tour-run")

        assert amo["results"]["charge"]["data"]["charged"] == 5
        assert tour["results"]["load"]["data"] == 2
        module_of = {
            pids["tasks-1"]: "mytour.tasks",
            pids["tasks-2"]: "mytour.tasks",
            pids["amo-1"]: "mytour.amo",
        }
        lines = procs.ledger_lines()
        started = sorted((line["run"], line["task"]) for line in lines)
        assert started == [
            ("amo-run", "charge"),
            ("amo-run", "quote"),
            ("tour-run", "extract"),
            ("tour-run", "load"),
        ]
        for line in lines:  # each task started once, at its first attempt, on a worker that has it
            assert line["attempt"] == 1, line
            assert module_of[line["pid"]] == line["module"], line
        for doc in (amo, tour):
            for result in doc["results"].values():
                assert result["status"] == "success" and result["metrics"]["attempt"] == 1
        for name in pids:
            assert "not a registered task" not in procs.log(name)


def test_a_task_no_live_worker_can_run_waits_saying_why_then_runs_when_one_comes(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    with _fleet(tmp_path) as procs:
        _worker(procs, redis_url, "mytour.tasks", "tasks-1")
        _wait_workers(redis_conn, {"tasks-1"})
        procs.coordinator(redis_url)
        _cli(procs, "submit", "mytour.amo:flow", "--redis", redis_url, "--run-id", "held")
        watcher = subprocess.Popen(
            rqdag_command("watch", "held", "--redis", redis_url, "--json"),
            env=procs.env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        expected = "waiting: no live worker on queue 'default' runs 'mytour.amo:quote'"

        started = time.monotonic()
        doc = wait_for(
            lambda: (
                d
                if (d := _status(procs, redis_url, "held"))["in_flight"].get("quote", {}).get("waiting")
                else None
            ),
            10,
            "the waiting note",
        )
        assert time.monotonic() - started < 10
        assert f"waiting: {doc['in_flight']['quote']['waiting']}" == expected
        human = _cli(procs, "status", "held", "--redis", redis_url).stdout
        assert expected in " ".join(human.split())
        inspected = _cli(procs, "inspect", "held", "quote", "--redis", redis_url).stdout
        assert "no live worker on queue 'default' runs 'mytour.amo:quote'" in " ".join(inspected.split())
        time.sleep(1.0)  # while it waits, the incapable worker takes nothing
        assert procs.ledger_lines() == []

        _worker(procs, redis_url, "mytour.amo", "amo-1")
        done = _wait_done(procs, redis_url, "held", timeout=30)
        watched, _ = watcher.communicate(timeout=30)
        updates = [json.loads(line) for line in watched.splitlines()]
        waits = [f.get("waiting") for u in updates if u["type"] == "update" for f in u["in_flight"]]
        assert "no live worker on queue 'default' runs 'mytour.amo:quote'" in waits
        assert updates[-1]["type"] == "outcome" and updates[-1]["status"] == "succeeded"

        assert done["results"]["charge"]["metrics"]["attempt"] == 1
        assert [(line["task"], line["attempt"]) for line in procs.ledger_lines()] == [
            ("quote", 1),
            ("charge", 1),
        ]


def test_rqdag_workers_lists_live_workers_and_drops_a_killed_one(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    with _fleet(tmp_path) as procs:
        busy = _worker(procs, redis_url, "mytour.tasks", "busy-1", "--heartbeat-timeout", "3")
        _worker(procs, redis_url, "mytour.amo", "idle-1", "--heartbeat-timeout", "3")
        _wait_workers(redis_conn, {"busy-1", "idle-1"})
        procs.coordinator(redis_url)
        _cli(procs, "submit", "mytour.tasks:blocking", "--redis", redis_url, "--run-id", "blocked")

        def listed() -> dict[str, Any] | None:
            doc = json.loads(_cli(procs, "workers", "--redis", redis_url, "--json").stdout)
            by_name = {w["name"]: w for w in doc["workers"]}
            busy_one = by_name.get("busy-1")
            return by_name if busy_one and busy_one["current"] else None

        by_name = wait_for(listed, 15, "busy-1 running its task")
        busy_doc, idle_doc = by_name["busy-1"], by_name["idle-1"]
        assert busy_doc["pid"] == busy.pid and busy_doc["queues"] == ["default"]
        assert busy_doc["modules"] == ["mytour.tasks"] and "mytour.tasks:block" in busy_doc["functions"]
        assert busy_doc["worker_class"] == "simple" and busy_doc["python_version"]
        assert busy_doc["rqdag_version"] and busy_doc["started_at"] > 0 and busy_doc["heartbeat_at"] > 0
        assert busy_doc["current"]["run_id"] == "blocked" and busy_doc["current"]["task"] == "block"
        assert busy_doc["current"]["attempt"] == 1
        assert idle_doc["current"] is None
        assert {"mytour.amo:charge", "mytour.amo:quote"} <= set(idle_doc["functions"])
        human = " ".join(_cli(procs, "workers", "--redis", redis_url).stdout.split())
        assert "busy-1" in human and "idle-1" in human and "blocked block #1 for" in human and "idle" in human

        busy.send_signal(signal.SIGKILL)
        busy.wait()
        killed_at = time.monotonic()
        wait_until(
            lambda: "busy-1" not in {w.name for w in live_workers(redis_conn)}, 10, "busy-1 dropped out"
        )
        assert time.monotonic() - killed_at <= 3.5  # its heartbeat limit (3 s), and a poll
        assert [w.name for w in live_workers(redis_conn)] == ["idle-1"]


def test_jobs_left_in_the_queue_of_workers_that_died_go_to_a_live_capable_worker(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    with _fleet(tmp_path) as procs:
        doomed = _worker(procs, redis_url, "mytour.tasks", "doomed", "--heartbeat-timeout", "2")
        _wait_workers(redis_conn, {"doomed"})
        procs.coordinator(redis_url)
        busy = ("submit", "mytour.tasks:blocking", "--param", "seconds=15", "--heartbeat-timeout", "2")
        _cli(procs, *busy, "--redis", redis_url, "--run-id", "busy")
        wait_until(lambda: len(procs.ledger_lines()) == 1, 15, "doomed busy with 'block'")
        _cli(procs, "submit", "mytour.tasks:flow", "--redis", redis_url, "--run-id", "behind")
        store = RunStore(redis_conn)

        def queued_behind() -> bool:
            entry = store.read_state("behind").dispatch.get("extract")
            return entry is not None and entry.state == "queued" and entry.rq_queue is not None

        wait_until(queued_behind, 20, "extract queued behind the busy worker")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        # a worker of another function set (so another capability queue) that can run them too
        _worker(procs, redis_url, "mytour.tasks,mytour.amo", "heir")

        behind = _wait_done(procs, redis_url, "behind", timeout=40)
        _wait_done(procs, redis_url, "busy", timeout=60)

        assert behind["results"]["load"]["data"] == 2
        ran = [(line["run"], line["task"]) for line in procs.ledger_lines()]
        assert ran.count(("behind", "extract")) == 1 and ran.count(("behind", "load")) == 1
        assert behind["results"]["extract"]["metrics"]["worker"] == "heir"
        # it never started in the dead worker's queue: sent again, no failure counted (attempt + 1)
        assert behind["results"]["extract"]["metrics"]["attempt"] == 2
        assert "every worker that could take its job left before taking it" in procs.log("coordinator")
