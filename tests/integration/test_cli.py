"""The CLI through click's runner against a real Redis with a real worker and coordinator.

Parsing, output, --json shapes and exit codes (0 success, 1 run failed or
cancelled, 2 usage or connection error with one line on stderr).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rqdag.cli import COMMANDS, main
from rqdag.cli.reference import render_reference
from tests.integration.flows import recoverable
from tests.integration.test_cli_support import CHAIN, RECOVERABLE, Cluster, chain, cluster
from tests.support import REPO
from tests.support.cli import invoke, lines
from tests.support.redis import free_port

__all__ = ["cluster"]

RUN_FIELDS = {"run_id", "workflow", "status", "epoch", "params", "created_at", "updated_at", "finished_at"}
RUN_FIELDS |= {"cancel", "task_count", "error"}
COUNT_FIELDS = {
    "success",
    "failure",
    "skipped",
    "cancelled",
    "queued",
    "running",
    "retry_wait",
    "handed_back",
    "lost",
    "pending",
}


def parse(text: str) -> Any:
    """A command's JSON output."""
    return json.loads(text)


@pytest.fixture(scope="module")
def failed_run(cluster: Cluster) -> str:
    """``recoverable`` run to its end: a success, a failure with a traceback, a skip, a retried success."""
    cluster.finished(recoverable, "rec-failed")
    return "rec-failed"


def test_help_lists_every_command_in_a_day_s_order() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    names = [c.name for c in COMMANDS]
    positions = [result.output.index(f"  {name} ") for name in names]
    assert positions == sorted(positions)
    assert {"watch", "inspect", "resolve", "snapshot"} <= set(names)
    snapshot_help = invoke("snapshot", "--help").output
    assert all(sub in snapshot_help for sub in ("export", "import", "diff"))


def test_the_cli_reference_is_generated_from_the_commands() -> None:
    written = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == render_reference(main), "docs/cli.md is stale: python scripts/gen_cli_reference.py"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["status", "r1"], "error: no Redis given: pass --redis URL or set REDIS_URL"),
        (["status", "r1", "--redis", "http://localhost/0"], "error: bad Redis URL 'http://localhost/0'"),
        (
            ["runs", "--redis", "redis://:hunter2@127.0.0.1:{port}/0"],
            "error: cannot reach Redis at redis://:***@",
        ),
        (
            ["watch", "r1", "--redis", "redis://127.0.0.1:{port}/0"],
            "error: cannot reach Redis at redis://127.0",
        ),
    ],
)
def test_usage_and_connection_errors_exit_2_with_one_line(
    args: list[str], reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no embedded store of an earlier 'rqdag run' to read
    port = str(free_port())
    result = invoke(*[a.replace("{port}", port) for a in args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(lines(result.stderr)) == 1 and result.stderr.startswith(reason), result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["status", "nope"],
        ["watch", "nope"],
        ["inspect", "nope", "a"],
        ["resolve", "nope", "a", "--status", "success"],
        ["resume", "nope"],
        ["resume", "nope", "--plan"],
        ["cancel", "nope"],
        ["snapshot", "export", "nope"],
        ["snapshot", "diff", "nope", "nope"],
        ["graph", "nope"],
    ],
)
def test_an_unknown_run_exits_2_naming_it(cluster: Cluster, args: list[str]) -> None:
    result = invoke(*args, "--redis", cluster.url)
    assert result.exit_code == 2
    assert result.stderr == "error: no run 'nope'\n"


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["runs", "--status", "sleeping"],
        ["resolve", "r", "t", "--status", "skipped"],
        ["run", CHAIN, "--param", "no-equals-sign"],
        ["watch", "r", "--on-interrupt", "shrug"],
        ["worker"],
        ["bogus"],
    ],
)
def test_bad_usage_exits_2(args: list[str]) -> None:
    result = invoke(*args, env={"REDIS_URL": "redis://127.0.0.1:9/0"})
    assert result.exit_code == 2, result.output


def test_status_runs_and_inspect(cluster: Cluster, failed_run: str) -> None:
    doc = parse(invoke("status", failed_run, "--redis", cluster.url, "--json").stdout)
    assert set(doc) == {
        "run",
        "version",
        "results",
        "in_flight",
        "counts",
        "problems",
        "coordinator",
        "holds",
    }
    assert set(doc["run"]) == RUN_FIELDS and doc["run"]["status"] == "failed"
    assert set(doc["counts"]) == COUNT_FIELDS
    assert (doc["counts"]["success"], doc["counts"]["failure"], doc["counts"]["skipped"]) == (2, 1, 1)
    assert doc["results"]["d"]["metrics"]["attempt"] == 2 and doc["in_flight"] == {}

    human = invoke("status", failed_run, "--redis", cluster.url)
    assert human.exit_code == 0
    assert "\x1b" not in human.stdout and "━" not in human.stdout
    table = lines(human.stdout)
    assert table[0].split() == ["task", "status", "attempt", "worker", "duration", "message"]
    rows = [row.split()[:2] for row in table[1:5]]
    assert rows == [["a", "success"], ["b", "failure"], ["d", "success"], ["c", "skipped"]]
    assert table[-1] == f"run {failed_run} (epoch 1): failed - 2 success, 1 failure, 1 skipped (4 tasks)"

    listed = parse(invoke("runs", "--redis", cluster.url, "--json", "--status", "failed").stdout)
    mine = next(r for r in listed if r["run_id"] == failed_run)
    assert set(mine) == RUN_FIELDS | {"done", "age_s"} and mine["done"] == 4 and mine["age_s"] >= 0
    assert all(r["status"] == "failed" for r in listed)
    assert parse(invoke("runs", "--redis", cluster.url, "--json", "--workflow", "no-such").stdout) == []
    row = next(r for r in lines(invoke("runs", "--redis", cluster.url).stdout) if r.startswith(failed_run))
    assert row.split()[1:5] == ["recoverable", "failed", "4/4", "1"]

    b = parse(invoke("inspect", failed_run, "b", "--redis", cluster.url, "--json").stdout)
    assert set(b) == {
        "run_id",
        "run_status",
        "epoch",
        "task",
        "status",
        "attempts",
        "max_attempts",
        "result",
        "in_flight",
        "definition",
        "audit",
        "child_run",
    }
    assert b["child_run"] is None  # not a subflow
    assert (b["status"], b["attempts"], b["max_attempts"], b["in_flight"], b["audit"]) == (
        "failure",
        1,
        1,
        None,
        [],
    )
    assert "RuntimeError: not fixed yet" in b["result"]["error"] and "Traceback" in b["result"]["error"]
    assert b["definition"]["func"] == "tests.integration.flows:fails_unless_fixed"
    human_b = invoke("inspect", failed_run, "b", "--redis", cluster.url).stdout
    assert "RuntimeError: not fixed yet" in human_b and "1 of at most 1" in human_b
    d = parse(invoke("inspect", failed_run, "d", "--redis", cluster.url, "--json").stdout)
    assert (d["attempts"], d["max_attempts"], d["result"]["data"]) == (2, 2, 2)
    missing = invoke("inspect", failed_run, "zzz", "--redis", cluster.url)
    assert (missing.exit_code, missing.stderr) == (2, f"error: run '{failed_run}' has no task 'zzz'\n")


def test_watch_of_a_finished_run_prints_its_outcome_and_exits_with_it(
    cluster: Cluster, failed_run: str
) -> None:
    result = invoke("watch", failed_run, "--redis", cluster.url, "--json")
    assert result.exit_code == 1
    update, outcome = (parse(line) for line in lines(result.stdout))
    assert update["type"] == "update" and update["done"] == update["total"] == 4
    assert set(update) == {
        "type",
        "run_id",
        "workflow",
        "status",
        "epoch",
        "total",
        "done",
        "counts",
        "in_flight",
        "eta_s",
        "at",
        "coordinator",
    }
    assert outcome == {
        "type": "outcome",
        "run_id": failed_run,
        "status": "failed",
        "exit_code": 1,
        "total": 4,
        "done": 4,
        "counts": update["counts"],
    }
    cluster.finished(chain, "chain-ok", sleep_s=0)
    plain = invoke("watch", "chain-ok", "--redis", cluster.url)
    assert plain.exit_code == 0
    assert lines(plain.stdout)[-1] == "run chain-ok (epoch 1): succeeded - 6 success (6 tasks)"
    assert "chain-ok succeeded: 6/6 done" in plain.stdout


def test_resolve_records_the_operator_and_resume_goes_on_from_it(cluster: Cluster) -> None:
    cluster.finished(recoverable, "rec-resolve")
    bad = invoke(
        "resolve", "rec-resolve", "b", "--status", "success", "--data", "{oops", "--redis", cluster.url
    )
    assert bad.exit_code == 2 and "--data" in bad.stderr
    done = invoke(
        "resolve",
        "rec-resolve",
        "b",
        "--status",
        "success",
        "--data",
        '{"n": 5}',
        "--reason",
        "ran it by hand",
        "--redis",
        cluster.url,
        env={"USER": "ops"},
    )
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("run rec-resolve: task b resolved as success by ops@")
    b = parse(invoke("inspect", "rec-resolve", "b", "--redis", cluster.url, "--json").stdout)
    assert b["status"] == "success" and b["result"]["data"] == {"n": 5}
    (entry,) = b["audit"]
    assert (
        entry["kind"] == "resolve" and entry["who"].startswith("ops@") and entry["reason"] == "ran it by hand"
    )
    assert entry["previous"]["status"] == "failure"

    plan = parse(invoke("resume", "rec-resolve", "--plan", "--json", "--redis", cluster.url).stdout)
    assert plan == {
        "run_id": "rec-resolve",
        "resumed": False,
        "keep": ["a", "b", "d"],
        "rerun": ["c"],
        "changed": [],
        "add": [],
        "drop": [],
        "why": {},
        "requested": [],
        "downstream": {},
        "params": {"old": {}, "new": {}},
        "notes": [],
        "nothing_to_resume": False,
    }
    resumed = invoke("resume", "rec-resolve", "--redis", cluster.url)
    assert resumed.exit_code == 0 and "rerun: c" in resumed.stdout
    watched = invoke("watch", "rec-resolve", "--redis", cluster.url, "--json")
    assert watched.exit_code == 0
    final = parse(lines(watched.stdout)[-1])
    assert (final["status"], final["counts"]["success"]) == ("succeeded", 4)
    c = parse(invoke("inspect", "rec-resolve", "c", "--redis", cluster.url, "--json").stdout)
    assert c["result"]["data"]["n"] == 6  # c summed b's data, which the operator gave


def test_snapshot_export_import_and_diff(cluster: Cluster, failed_run: str, tmp_path: Path) -> None:
    exported = tmp_path / "run.json"
    out = invoke("snapshot", "export", failed_run, "-o", str(exported), "--redis", cluster.url)
    assert out.exit_code == 0, out.output
    document = json.loads(exported.read_text())
    assert set(document) == {"version", "results", "run"} and document["run"]["workflow"] == "recoverable"
    assert parse(invoke("snapshot", "export", failed_run, "--redis", cluster.url).stdout) == document

    imported = invoke("snapshot", "import", str(exported), "--run-id", "rec-imported", "--redis", cluster.url)
    assert (imported.exit_code, imported.stdout) == (0, "rec-imported\n")
    watched = invoke("watch", "rec-imported", "--redis", cluster.url, "--json")
    assert watched.exit_code == 1  # b still fails: the params came along

    same = parse(
        invoke("snapshot", "diff", str(exported), failed_run, "--redis", cluster.url, "--json").stdout
    )
    assert same == {
        "a": str(exported),
        "b": failed_run,
        "added": [],
        "removed": [],
        "status_changed": [],
        "data_changed": [],
        "unchanged": 4,
    }

    changed = json.loads(exported.read_text())
    changed["results"]["b"]["status"] = "success"
    changed["results"]["a"]["data"] = {"n": 99, "task": "a"}
    changed["results"]["e"] = changed["results"].pop("c")
    other = tmp_path / "other.json"
    other.write_text(json.dumps(changed))
    diff = parse(invoke("snapshot", "diff", str(exported), str(other), "--json").stdout)
    assert diff["added"] == [{"task": "e", "status": "skipped"}]
    assert diff["removed"] == [{"task": "c", "status": "skipped"}]
    assert diff["status_changed"] == [{"task": "b", "a": "failure", "b": "success"}]
    assert diff["data_changed"] == [{"task": "a", "a": {"n": 1, "task": "a"}, "b": {"n": 99, "task": "a"}}]
    assert diff["unchanged"] == 1
    human = invoke("snapshot", "diff", str(exported), str(other)).stdout
    assert [row.split()[:2] for row in lines(human)[1:5]] == [
        ["e", "added"],
        ["c", "removed"],
        ["b", "status"],
        ["a", "data"],
    ]
    assert lines(human)[-1].endswith("- 4 changed, 1 unchanged")
    no_file = invoke("snapshot", "diff", str(tmp_path / "absent.json"), str(other))
    assert no_file.exit_code == 2 and "no snapshot file" in no_file.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    bad = invoke("snapshot", "import", str(garbage), "--run-id", "x", "--redis", cluster.url)
    assert bad.exit_code == 2 and len(lines(bad.stderr)) == 1 and "not valid JSON" in bad.stderr


def test_graph_of_a_target_and_of_a_run(cluster: Cluster, failed_run: str) -> None:
    target = invoke("graph", RECOVERABLE)
    assert target.exit_code == 0 and target.stdout.startswith("flowchart TD")
    assert "classDef" not in target.stdout
    coloured = invoke("graph", failed_run, "--format", "dot", "--redis", cluster.url)
    assert coloured.exit_code == 0 and coloured.stdout.startswith("digraph workflow {")
    assert coloured.stdout.count("fillcolor") == 4
    broken = invoke("graph", "no_such_module:flow")
    assert broken.exit_code == 2 and len(lines(broken.stderr)) == 1


def test_cancel_then_the_run_ends_cancelled(cluster: Cluster) -> None:
    cluster.started(chain, "chain-cancel", sleep_s=0.5)
    result = invoke("cancel", "chain-cancel", "--reason", "enough", "--redis", cluster.url)
    assert (result.exit_code, result.stdout) == (0, "cancel requested for run chain-cancel\n")
    watched = invoke("watch", "chain-cancel", "--redis", cluster.url, "--json")
    assert watched.exit_code == 1
    assert parse(lines(watched.stdout)[-1])["status"] == "cancelled"


def test_submit_prints_the_run_id_or_waits_for_the_outcome(cluster: Cluster) -> None:
    plain = invoke("submit", CHAIN, "--run-id", "sub-1", "--param", "sleep_s=0", "--redis", cluster.url)
    assert (plain.exit_code, plain.stdout) == (0, "sub-1\n")
    waited = invoke("submit", RECOVERABLE, "--run-id", "sub-2", "--wait", "--json", "--redis", cluster.url)
    assert waited.exit_code == 1
    assert parse(waited.stdout)["run"]["status"] == "failed"
    again = invoke("submit", RECOVERABLE, "--run-id", "sub-2", "--redis", cluster.url)
    assert again.exit_code == 2 and again.stderr == "error: run 'sub-2' exists already (resume it instead)\n"
