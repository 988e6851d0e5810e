"""Resume after a deploy: changed code re-runs (with what is downstream), new params, forced re-runs.

Real processes throughout: the task module is a file in a temp dir that the
workers import; the test edits it and restarts the worker, as a deploy does,
and the CLI that plans the resume does not have the module at all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import redis

from rqdag import Client, Retry, TaskResult, Workflow
from rqdag.shared.model.codec import encode_result
from rqdag.shared.store.code import publish_code
from rqdag.shared.store.keys import CODE, RunKeys
from rqdag.shared.store.resume import resume_run
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import fails_unless_fixed, recoverable, step
from tests.support import REPO
from tests.support.processes import Procs, rqdag_env
from tests.support.wait import wait_until

MODULE = "deployflow"
FLOW = """
import json
import os

from rqdag import Workflow

flow = Workflow("deployflow")


def _ledger(ctx, **extra):
    line = {"run_id": ctx.run_id, "task": ctx.task, "n": ctx.params.get("n"), **extra}
    with open(os.environ["RQDAG_TEST_LEDGER"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\\n")


@flow.task()
def extract(ctx):
    _ledger(ctx)
    return {"rows": 3}


@flow.task(depends_on=["extract"])
def transform(ctx):
    _ledger(ctx)
    return {"rows": ctx.inputs["extract"]["rows"] * FACTOR}


@flow.task(depends_on=["transform"])
def load(ctx):
    _ledger(ctx)
    return {"loaded": ctx.inputs["transform"]["rows"]}


@flow.task(depends_on=["extract"])
def report(ctx):
    _ledger(ctx)
    return "ok"
"""


def write_flow(folder: Path, *, factor: int, header: str = "") -> None:
    """The task module; ``header`` (comments) moves every function down."""
    (folder / f"{MODULE}.py").write_text(header + textwrap.dedent(FLOW).replace("FACTOR", str(factor)))


def env_with(folder: Path | None, procs: Procs) -> dict[str, str]:
    """A child's environment; ``folder`` on its path when given (the workers' side)."""
    env = rqdag_env(procs.ledger)
    if folder is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(folder), env["PYTHONPATH"]])
    return env


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m rqdag ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "rqdag", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def start_worker(procs: Procs, url: str, folder: Path, name: str) -> subprocess.Popen[bytes]:
    env = env_with(folder, procs)
    return procs.spawn(
        "worker", "--redis", url, "--tasks", MODULE, "--heartbeat-interval", "0.5", name=name, env=env
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=20)


def published(url: str, func: str) -> bytes | None:
    with redis.Redis.from_url(url) as conn:
        value: bytes | None = conn.hget(CODE, func)  # type: ignore[assignment]
        return value


def runs_of(procs: Procs, run_id: str) -> list[tuple[str, Any]]:
    return [(line["task"], line["n"]) for line in procs.ledger_lines() if line["run_id"] == run_id]


def submit_and_wait(url: str, folder: Path, procs: Procs, run_id: str, *params: str) -> None:
    done = cli(
        "submit", f"{MODULE}:flow", "--run-id", run_id, "--redis", url, *params, env=env_with(folder, procs)
    )
    assert done.returncode == 0, done.stderr
    Client(url).run(run_id).wait(timeout=60)


def test_a_changed_task_body_reruns_it_and_its_dependents_only(
    redis_url: str, procs: Procs, tmp_path: Path
) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    write_flow(folder, factor=2)
    worker = start_worker(procs, redis_url, folder, "worker-1")
    procs.coordinator(redis_url)
    submit_and_wait(redis_url, folder, procs, "dep-1")
    assert sorted(runs_of(procs, "dep-1")) == [
        ("extract", None),
        ("load", None),
        ("report", None),
        ("transform", None),
    ]

    # the deploy: transform's body changes, and a comment at the top moves every function down
    before = published(redis_url, f"{MODULE}:transform")
    write_flow(folder, factor=10, header="# deployed on a Tuesday\n# with a longer header\n\n")
    stop(worker)
    start_worker(procs, redis_url, folder, "worker-2")
    wait_until(lambda: published(redis_url, f"{MODULE}:transform") != before, 30, "the new worker's code")

    here = env_with(None, procs)  # the operator's shell: no task module to import
    plan = cli("resume", "dep-1", "--plan", "--redis", redis_url, env=here)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[:5] == [
        "keep: extract, report",
        "rerun: transform, load",
        "changed: transform (code)",
        "add: -",
        "drop: -",
    ]
    assert "downstream: load (after transform)" in lines
    as_json = json.loads(cli("resume", "dep-1", "--plan", "--json", "--redis", redis_url, env=here).stdout)
    assert as_json["why"] == {"transform": ["code"]} and as_json["downstream"] == {"load": "transform"}
    assert as_json["resumed"] is False

    resumed = cli("resume", "dep-1", "--redis", redis_url, env=here)
    assert resumed.returncode == 0, resumed.stderr
    results = Client(redis_url).run("dep-1").wait(timeout=60)
    tasks = [task for task, _ in runs_of(procs, "dep-1")]
    assert {t: tasks.count(t) for t in set(tasks)} == {"extract": 1, "report": 1, "transform": 2, "load": 2}
    assert results["load"].data == {"loaded": 30}, "the new code ran"

    # the new epoch's results carry the new code: nothing is left to resume
    again = cli("resume", "dep-1", "--redis", redis_url, env=here)
    assert again.returncode == 0, again.stderr
    assert "changed: -" in again.stdout
    assert again.stdout.splitlines()[-1].startswith("nothing to resume: run dep-1 succeeded")
    assert RunStore(Client(redis_url).connection).read_meta("dep-1").epoch == 2


def test_resume_with_new_params_and_forced_reruns(redis_url: str, procs: Procs, tmp_path: Path) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    write_flow(folder, factor=2)
    start_worker(procs, redis_url, folder, "worker")
    procs.coordinator(redis_url)
    submit_and_wait(redis_url, folder, procs, "par-1", "--param", "n=1")
    here = env_with(None, procs)

    nothing = cli("resume", "par-1", "--redis", redis_url, env=here)
    assert nothing.returncode == 0 and "nothing to resume: run par-1 succeeded" in nothing.stdout
    unknown = cli(
        "resume", "par-1", "--rerun", "transform", "--rerun", "nope", "--redis", redis_url, env=here
    )
    assert unknown.returncode == 2
    assert (
        unknown.stderr
        == "error: run 'par-1' has no task 'nope' to run again (its workflow is 'deployflow')\n"
    )

    asked = ("--rerun", "transform", "--param", "n=2", "--redis", redis_url)
    plan = cli("resume", "par-1", *asked, "--plan", env=here)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines() == [
        "keep: extract, report",
        "rerun: transform, load",
        "changed: -",
        "add: -",
        "drop: -",
        "requested: transform",
        "downstream: load (after transform)",
        "params: n: 1 -> 2",
    ]
    as_json = json.loads(cli("resume", "par-1", *asked, "--plan", "--json", env=here).stdout)
    assert as_json["requested"] == ["transform"] and as_json["downstream"] == {"load": "transform"}
    assert as_json["params"] == {"old": {"n": 1}, "new": {"n": 2}}
    assert as_json["nothing_to_resume"] is False

    assert cli("resume", "par-1", *asked, env=here).returncode == 0
    client = Client(redis_url)
    client.run("par-1").wait(timeout=60)
    assert runs_of(procs, "par-1")[4:] == [("transform", 2), ("load", 2)], "only they ran, with the new n"

    client.resume("par-1", params={"n": 3}, rerun=["load"])
    client.run("par-1").wait(timeout=60)
    assert runs_of(procs, "par-1")[6:] == [("load", 3)]
    meta = RunStore(client.connection).read_meta("par-1")
    assert meta.epoch == 3 and meta.params == {"n": 3}
    assert meta.epoch_params == {1: {"n": 1}, 2: {"n": 2}, 3: {"n": 3}}


def test_a_run_stored_by_an_older_rqdag_is_planned_and_resumed(redis_url: str) -> None:
    """A format-2 definition has no code hashes: nothing crashes, nothing is claimed changed
    that cannot be shown, and after the resume the run's definition has them."""
    client = Client(redis_url)
    store = RunStore(client.connection)
    client.submit(recoverable, run_id="legacy-1")
    rk = RunKeys("legacy-1")
    document = orjson.loads(client.connection.get(rk.definition))
    document["format"] = 2
    for profile in document["profiles"]:
        del profile["version"], profile["code"]
    client.connection.set(rk.definition, orjson.dumps(document))
    stored = store.read_definition("legacy-1")
    client.connection.hset(
        rk.results,
        mapping={
            t.name: encode_result(
                dataclasses.replace(TaskResult.success(t.name), definition_hash=t.definition_hash()),
                what=t.name,
            )
            for t in stored.tasks
        },
    )
    client.connection.hset(rk.meta, "status", "succeeded")
    here = rqdag_env()

    quiet = cli("resume", "legacy-1", "--plan", "--redis", redis_url, env=here)
    assert quiet.returncode == 0 and "nothing to resume: run legacy-1 succeeded" in quiet.stdout
    publish_code(
        client.connection, {f"tests.integration.flows:{f.__name__}": f for f in (step, fails_unless_fixed)}
    )
    noted = cli("resume", "legacy-1", "--plan", "--redis", redis_url, env=here)
    assert noted.returncode == 0, noted.stderr
    assert "keep: a, b, c, d" in noted.stdout and "changed: -" in noted.stdout
    assert "note: code not compared for a, b, c: the run's definition has no hash of it" in noted.stdout

    target = ("--target", "tests.integration.test_resume_changes:retried")
    planned = cli("resume", "legacy-1", "--plan", *target, "--redis", redis_url, env=here)
    assert "changed: a (settings)" in planned.stdout, planned.stdout + planned.stderr
    foreign = dataclasses.replace(TaskResult.success("d"), definition_hash="0123456789abcdef")
    client.connection.hset(rk.results, "d", encode_result(foreign, what="d"))
    mixed = cli("resume", "legacy-1", "--plan", "--redis", redis_url, env=here)
    assert "changed: d (definition)" in mixed.stdout and "rerun: d" in mixed.stdout

    plan = resume_run(store, "legacy-1")
    assert plan.rerun == ["d"] and plan.keep == ["a", "b", "c"]
    assert orjson.loads(client.connection.get(rk.definition))["format"] == 3
    client.connection.hset(rk.meta, "status", "succeeded")
    after = resume_run(store, "legacy-1", dry_run=True)
    assert after.keep == ["a", "b", "c"] and after.notes == [], "kept under the hashes the run now has"


retried = Workflow("recoverable")
for _task in recoverable.tasks:
    retried.add(dataclasses.replace(_task, retry=Retry(attempts=5)) if _task.name == "a" else _task)
