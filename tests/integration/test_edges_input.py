"""Bad input at the edges (run ids, params, snapshot files) and unreadable runs, against a real Redis.

Each is refused with one clear line naming what is wrong, before anything is
written; a run whose meta is garbage is listed as ``error``, never hidden.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from rqdag import Client, RqdagError, Task, Workflow
from rqdag.cli import main
from rqdag.errors import EncodeError, SnapshotError
from rqdag.shared.model.limits import MAX_RESULT_BYTES
from rqdag.shared.store.keys import RUNS, RunKeys
from tests.integration.flows import step

pair = Workflow("pair", [Task("a", step), Task("b", step, depends_on=["a"])])
PAIR = "tests.integration.test_edges_input:pair"


def invoke(*args: str) -> Result:
    """``rqdag ARGS`` in-process, REDIS_URL unset, exceptions not swallowed (a TypeError fails the test)."""
    return CliRunner().invoke(main, list(args), env={"REDIS_URL": None}, catch_exceptions=False)


def one_error_line(result: Result) -> str:
    """The single ``error: ...`` line of a refused command (exit code 2, nothing on stdout)."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


def nothing_stored(conn: redis.Redis) -> bool:
    """No run was written (no index entry, no key at all)."""
    return conn.zcard(RUNS) == 0 and conn.dbsize() == 0


# ---- run ids ----------------------------------------------------------------------


def test_client_submit_refuses_an_empty_run_id(redis_url: str, redis_conn: redis.Redis) -> None:
    with pytest.raises(RqdagError, match="run id is empty"):
        Client(redis_url).submit(pair, run_id="")
    assert nothing_stored(redis_conn)


@pytest.mark.parametrize(
    "command",
    [
        ["submit", PAIR],
        ["run", PAIR, "--workers", "0", "--timeout", "1"],  # without the check: runs, fails at its deadline
        ["snapshot", "import", "{file}"],
    ],
)
def test_the_cli_refuses_an_empty_run_id_in_one_line(
    command: list[str], redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    exported = _exported(redis_url, tmp_path)
    redis_conn.flushall()
    args = [a.replace("{file}", str(exported)) for a in command]
    line = one_error_line(invoke(*args, "--run-id", "", "--redis", redis_url))
    assert "run id is empty" in line
    assert nothing_stored(redis_conn)


# ---- params -----------------------------------------------------------------------


@pytest.mark.parametrize("params", [[1, 2], [("date", "2026-11-28")], "date=2026-11-28", 7])
def test_params_that_are_not_a_mapping_are_an_rqdag_error_naming_params(
    params: Any, redis_url: str, redis_conn: redis.Redis
) -> None:
    with pytest.raises(RqdagError, match=r"^params must be a mapping of parameter name to JSON value"):
        Client(redis_url).submit(pair, params=params)
    assert nothing_stored(redis_conn)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"threshold": math.nan}, "'threshold' is nan"),
        ({"threshold": math.inf}, "'threshold' is inf"),
        ({"opts": {"limit": -math.inf}}, "'opts.limit' is -inf"),
        ({"xs": [1.0, 2.0, math.nan]}, r"'xs\[2\]' is nan"),
    ],
)
def test_nan_and_infinity_in_params_are_refused_naming_the_parameter(
    params: dict[str, Any], named: str, redis_url: str, redis_conn: redis.Redis
) -> None:
    with pytest.raises(EncodeError, match=rf"params: parameter {named}: JSON has no NaN or Infinity"):
        Client(redis_url).submit(pair, params=params)
    assert nothing_stored(redis_conn)


@pytest.mark.parametrize(
    ("param", "named"),
    [
        ("threshold=NaN", "'threshold' is nan"),
        ("threshold=Infinity", "'threshold' is inf"),
        ("threshold=-Infinity", "'threshold' is -inf"),
        ("threshold=1e999", "'threshold' is inf"),
        ("xs=[1, 2, NaN]", "'xs[2]' is nan"),
        ('opts={"limit": 1e400}', "'opts.limit' is inf"),
    ],
)
def test_the_cli_refuses_nan_and_infinity_in_a_param_naming_it(
    param: str, named: str, redis_url: str, redis_conn: redis.Redis
) -> None:
    result = invoke("submit", PAIR, "--param", param, "--redis", redis_url)
    assert result.exit_code == 2, result.output
    assert f"parameter {named}, and JSON has no NaN or Infinity" in result.stderr
    assert nothing_stored(redis_conn)


def test_a_quoted_nan_param_is_text_and_other_text_stays_text(redis_url: str) -> None:
    args = ["--param", 'label="NaN"', "--param", "word=nan", "--param", "n=3"]
    result = invoke("submit", PAIR, *args, "--run-id", "texts", "--redis", redis_url)
    assert result.exit_code == 0, result.output
    assert Client(redis_url).run("texts").status().params == {"label": "NaN", "word": "nan", "n": 3}


# ---- snapshot import ----------------------------------------------------------------


def _exported(redis_url: str, tmp_path: Path) -> Path:
    """A real export of a ``pair`` run whose task 'a' succeeded (written as a worker would)."""
    client = Client(redis_url)
    seed = {"a": {"status": "success", "data": {"n": 1, "task": "a"}}}
    client.submit(pair, run_id="source", params={"sleep_s": 0}, snapshot=seed)
    path = tmp_path / "source.json"
    result = invoke("snapshot", "export", "source", "-o", str(path), "--redis", redis_url)
    assert result.exit_code == 0, result.output
    return path


def _edited(path: Path, edit: Any) -> Path:
    document = json.loads(path.read_text())
    edit(document)
    out = path.with_name("edited.json")
    out.write_text(json.dumps(document))
    return out


def test_snapshot_import_warns_naming_results_of_unknown_tasks(redis_url: str, tmp_path: Path) -> None:
    def add_ghosts(document: dict[str, Any]) -> None:
        for name in ("ghost", "phantom"):
            document["results"][name] = {"status": "success", "data": name}

    edited = _edited(_exported(redis_url, tmp_path), add_ghosts)
    result = invoke("snapshot", "import", str(edited), "--run-id", "imported", "--redis", redis_url)
    assert (result.exit_code, result.stdout) == (0, "imported\n")
    assert result.stderr == (
        f"warning: {edited}: results of tasks not in workflow 'pair' were left out: ghost, phantom\n"
    )
    assert set(Client(redis_url).run("imported").snapshot()) == {"a"}


def test_snapshot_import_refuses_a_result_over_the_workers_limit_naming_the_task(
    redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    def inflate(document: dict[str, Any]) -> None:
        document["results"]["a"]["data"] = "x" * MAX_RESULT_BYTES  # its JSON is a little larger

    edited = _edited(_exported(redis_url, tmp_path), inflate)
    line = one_error_line(invoke("snapshot", "import", str(edited), "--run-id", "big", "--redis", redis_url))
    assert (
        "snapshot entry 'a': its result is" in line and f"over the limit of {MAX_RESULT_BYTES} bytes" in line
    )
    assert not redis_conn.exists(RunKeys("big").meta) and redis_conn.zscore(RUNS, "big") is None

    higher = str(2 * MAX_RESULT_BYTES)
    args = ("--run-id", "big", "--max-result-bytes", higher, "--redis", redis_url)
    accepted = invoke("snapshot", "import", str(edited), *args)
    assert accepted.exit_code == 0, accepted.output
    assert len(Client(redis_url).run("big").snapshot()["a"].data) == MAX_RESULT_BYTES


def test_client_submit_applies_the_workers_result_limit_to_a_seeded_snapshot(
    redis_url: str, redis_conn: redis.Redis
) -> None:
    seed = {"a": {"status": "success", "data": "x" * MAX_RESULT_BYTES}}
    with pytest.raises(SnapshotError, match=r"snapshot entry 'a': its result is \d+ bytes, over the limit"):
        Client(redis_url).submit(pair, snapshot=seed)
    assert nothing_stored(redis_conn)
    unstored = {"a": {"status": "failure", "data": "x" * MAX_RESULT_BYTES}, "zz": {"status": "success"}}
    Client(redis_url).submit(pair, snapshot=unstored, run_id="unstored")  # neither is stored: no limit


def test_snapshot_import_refuses_params_that_are_not_an_object(redis_url: str, tmp_path: Path) -> None:
    def listed(document: dict[str, Any]) -> None:
        document["run"]["params"] = ["sleep_s", 0]

    edited = _edited(_exported(redis_url, tmp_path), listed)
    line = one_error_line(
        invoke("snapshot", "import", str(edited), "--run-id", "listed", "--redis", redis_url)
    )
    assert line == f"error: {edited}: 'run.params' must be a JSON object, got list\n"


# ---- runs whose meta is garbage ---------------------------------------------------------


def test_runs_lists_a_run_with_garbage_meta_as_error_with_the_reason(
    redis_url: str, redis_conn: redis.Redis
) -> None:
    client = Client(redis_url)
    client.submit(pair, run_id="fine")
    client.submit(pair, run_id="bad-params")
    redis_conn.hset(RunKeys("bad-params").meta, "params", "{not json")
    client.submit(pair, run_id="bad-epoch")
    redis_conn.hset(RunKeys("bad-epoch").meta, "epoch", "many")
    redis_conn.zadd(RUNS, {"not-a-hash": 1.0})
    redis_conn.set(RunKeys("not-a-hash").meta, "garbage")

    listed = json.loads(invoke("runs", "--json", "--redis", redis_url).stdout)
    by_id = {row["run_id"]: row for row in listed}
    assert set(by_id) == {"fine", "bad-params", "bad-epoch", "not-a-hash"}
    assert (by_id["fine"]["status"], by_id["fine"]["error"]) == ("pending", None)
    assert by_id["bad-params"]["status"] == "error" and by_id["bad-params"]["workflow"] == "pair"
    assert by_id["bad-params"]["error"].startswith("run 'bad-params': meta field 'params' is not valid JSON")
    assert by_id["bad-epoch"]["error"] == "run 'bad-epoch': meta field 'epoch' is not a number: 'many'"
    assert by_id["not-a-hash"]["status"] == "error" and "WRONGTYPE" in by_id["not-a-hash"]["error"]
    assert by_id["not-a-hash"]["created_at"] == 1.0

    only_errors = json.loads(invoke("runs", "--json", "--status", "error", "--redis", redis_url).stdout)
    assert {row["run_id"] for row in only_errors} == {"bad-params", "bad-epoch", "not-a-hash"}

    human = invoke("runs", "--redis", redis_url)
    assert human.exit_code == 0, human.output
    rows = {line.split()[0]: line.split() for line in human.stdout.splitlines()[1:5]}
    assert rows["bad-epoch"][1:3] == ["pair", "error"] and rows["fine"][1:3] == ["pair", "pending"]
    assert "error: run 'bad-epoch': meta field 'epoch' is not a number: 'many'" in human.stdout
    assert "error: run 'bad-params': meta field 'params' is not valid JSON" in human.stdout
    assert [m.status for m in client.runs()].count("error") == 3
