"""``rqdag prune`` on a real redis-server: 10,000 runs, every filter, dry runs, exports."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from rqdag import Task, TaskResult, Workflow, load_snapshot
from rqdag.cli import main
from rqdag.shared.store.keys import ACTIVE_RUNS, RUNS, RunKeys
from rqdag.shared.store.prune import PruneCriteria, prune_runs
from rqdag.shared.store.runs import RunStore
from tests.integration.flows import step

DAY = 86400.0
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "failed", "cancelled", "error")
ACTIVE = ("pending", "running", "blocked")
FLOWS = {
    name: Workflow(name, [Task("a", step), Task("b", step, depends_on=["a"])]) for name in ("alpha", "beta")
}


def invoke(*args: str) -> Result:
    """``rqdag ARGS`` in-process."""
    return CliRunner().invoke(main, list(args), env={"REDIS_URL": None}, catch_exceptions=False)


def prune_json(url: str, *args: str) -> set[str]:
    """Run ``rqdag prune ARGS --json``; the ids it lists."""
    result = invoke("prune", "--redis", url, "--json", *args)
    assert result.exit_code == 0, result.output
    return {row["run_id"] for row in json.loads(result.output)}


def make_runs(conn: redis.Redis, count: int, now: float) -> dict[str, dict[str, Any]]:
    """``count`` runs made through the store, then given the status and times a coordinator
    would have written (10 days old, or an hour old for one in four); returns their facts."""
    store = RunStore(conn)
    facts: dict[str, dict[str, Any]] = {}
    for i in range(count):
        run_id = f"r{i:05d}"
        flow = FLOWS["alpha" if i % 2 == 0 else "beta"]
        seed = {"a": TaskResult.success(data={"i": i})}
        store.create_run(flow, run_id=run_id, params={"i": i}, snapshot=seed)
        kind = i % 10
        status = STATUSES[kind] if kind < len(STATUSES) else ACTIVE[kind - len(STATUSES)]
        recent = (i // 10) % 4 == 0
        finished = now - (3600 if recent else 10 * DAY)
        facts[run_id] = {"workflow": flow.name, "status": status, "finished_at": finished}
    with conn.pipeline(transaction=False) as pipe:
        for run_id, fact in facts.items():
            meta = RunKeys(run_id).meta
            created = fact["finished_at"] - 60
            # active runs get an old finished_at too: only their status protects them
            pipe.hset(meta, mapping={"status": fact["status"], "finished_at": fact["finished_at"]})
            pipe.hset(meta, "created_at", repr(created))
            pipe.zadd(RUNS, {run_id: created})
            if fact["status"] not in ACTIVE:
                pipe.srem(ACTIVE_RUNS, run_id)
        pipe.execute()
    return facts


def matching(
    facts: dict[str, dict[str, Any]], statuses: tuple[str, ...], age: float, now: float, **kw: str
) -> set[str]:
    """The ids a prune with these filters must delete."""
    return {
        run_id
        for run_id, f in facts.items()
        if f["status"] in statuses
        and f["finished_at"] <= now - age
        and kw.get("workflow", f["workflow"]) == f["workflow"]
    }


@pytest.mark.timeout(60)
def test_prune_ten_thousand_runs_by_every_filter(
    redis_conn: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    now = time.time()
    facts = make_runs(redis_conn, 10_000, now)  # about 5 s; the prunes below take about 2 s
    default = ("succeeded", "failed", "cancelled")
    week = 7 * DAY
    keys_before = redis_conn.dbsize()

    would = prune_json(redis_url, "--older-than", "7d", "--dry-run")
    assert would == matching(facts, default, week, now)
    assert len(would) > 4_000
    assert redis_conn.dbsize() == keys_before and redis_conn.zcard(RUNS) == 10_000, (
        "a dry run deletes nothing"
    )

    gone: set[str] = set()
    steps: list[tuple[tuple[str, ...], set[str]]] = [
        (("--status", "failed"), matching(facts, ("failed",), week, now)),
        (("--workflow", "beta"), matching(facts, default, week, now, workflow="beta")),
        (
            ("--status", "succeeded", "--status", "cancelled", "--workflow", "alpha"),
            matching(facts, default, week, now, workflow="alpha"),
        ),
        (("--status", "error"), matching(facts, ("error",), week, now)),
    ]
    for filters, expected in steps:
        deleted = prune_json(redis_url, "--older-than", "7d", *filters)
        assert deleted == expected - gone, filters
        gone |= deleted
    assert prune_json(redis_url, "--older-than", "7d") == set(), "nothing old and finished is left"
    assert prune_json(redis_url, "--older-than", "2h") == set(), (
        "runs that finished an hour ago are too young"
    )

    exports = tmp_path / "exports"
    young = prune_json(redis_url, "--older-than", "30m", "--status", "cancelled", "--export", str(exports))
    assert young == matching(facts, ("cancelled",), 1800, now) - gone
    assert young, "some cancelled runs finished an hour ago"
    gone |= young
    assert {p.stem for p in exports.glob("*.json")} == young

    for run_id, fact in facts.items():
        if run_id in gone:
            continue
        assert redis_conn.exists(RunKeys(run_id).meta), f"{run_id} ({fact['status']}) was deleted"
    assert all(not redis_conn.exists(*RunKeys(r).all()) for r in list(gone)[:500])
    assert redis_conn.zcard(RUNS) == 10_000 - len(gone)
    active = {r for r, f in facts.items() if f["status"] in ACTIVE}
    assert {m.decode() for m in redis_conn.smembers(ACTIVE_RUNS)} == active
    assert not active & gone


def test_export_files_load_and_import(redis_conn: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    now = time.time()
    facts = make_runs(redis_conn, 20, now)
    exports = tmp_path / "out"
    result = invoke("prune", "--redis", redis_url, "--older-than", "7d", "--export", str(exports))
    assert result.exit_code == 0, result.output
    pruned = matching(facts, ("succeeded", "failed", "cancelled"), 7 * DAY, now)
    assert f"pruned {len(pruned)} runs" in result.output and f"exported to {exports}" in result.output
    for run_id in sorted(pruned):
        path = exports / f"{run_id}.json"
        snapshot = load_snapshot(path)
        assert snapshot["a"].data == {"i": int(run_id[1:])}
        assert json.loads(path.read_text())["run"]["workflow"] == facts[run_id]["workflow"]
    first = sorted(pruned)[0]
    imported = invoke(
        "snapshot", "import", str(exports / f"{first}.json"), "--run-id", "back", "--redis", redis_url
    )
    assert imported.exit_code == 0, imported.output
    assert RunStore(redis_conn).read_results("back") == load_snapshot(exports / f"{first}.json")


def test_dry_run_with_export_writes_no_file(redis_conn: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    make_runs(redis_conn, 20, time.time())
    result = invoke(
        "prune", "--redis", redis_url, "--older-than", "7d", "--export", str(tmp_path / "x"), "--dry-run"
    )
    assert result.exit_code == 0 and result.output.startswith("would prune ")
    assert not (tmp_path / "x").exists()
    assert redis_conn.zcard(RUNS) == 20


def test_a_run_resumed_after_matching_is_not_deleted(redis_conn: redis.Redis) -> None:
    now = time.time()
    make_runs(redis_conn, 10, now)
    store = RunStore(redis_conn)
    redis_conn.hset(RunKeys("r00000").meta, "status", "pending")  # resumed between the read and the delete
    deleted = store.prune_batch(["r00000", "r00001"], now, ("succeeded",))
    assert deleted == ["r00001"]
    assert redis_conn.exists(RunKeys("r00000").meta)
    assert redis_conn.zscore(RUNS, "r00000") is not None and redis_conn.zscore(RUNS, "r00001") is None


def test_runs_created_at_the_same_instant_are_each_seen_once(redis_conn: redis.Redis) -> None:
    now = time.time()
    facts = make_runs(redis_conn, 30, now)
    redis_conn.zadd(RUNS, dict.fromkeys(facts, now - 10 * DAY))  # every score the same
    report = prune_runs(RunStore(redis_conn), PruneCriteria(7 * DAY), now=now, dry_run=True, batch=4)
    ids = [c.run_id for c in report.pruned]
    assert (
        len(ids) == len(set(ids)) == len(matching(facts, ("succeeded", "failed", "cancelled"), 7 * DAY, now))
    )


def test_prune_forgets_index_ids_whose_run_is_gone(redis_conn: redis.Redis, redis_url: str) -> None:
    make_runs(redis_conn, 20, time.time())
    redis_conn.delete(*RunKeys("r00017").all())  # an old pending run whose keys vanished (deleted by hand)
    result = invoke("prune", "--redis", redis_url, "--older-than", "7d")
    assert result.exit_code == 0
    assert "dropped 1 ids" in result.output
    assert redis_conn.zscore(RUNS, "r00017") is None
    assert not redis_conn.sismember(ACTIVE_RUNS, "r00017")


def test_bad_older_than_is_a_usage_error(redis_url: str) -> None:
    result = CliRunner().invoke(main, ["prune", "--redis", redis_url, "--older-than", "-3d"])
    assert result.exit_code == 2
    assert "--older-than" in result.output and "'-3d'" in result.output
