"""The CLI on a run with a mapped task: status groups the children, inspect and graph take them."""

from __future__ import annotations

import json

import redis

from rqdag import TaskResult
from rqdag.shared.model.mapping import Expansion
from rqdag.shared.store.runs import RunStore
from tests.integration.map_flows import MODULE, mapped
from tests.support.cli import invoke
from tests.support.runs import dispatch, store_result


def half_done_map(conn: redis.Redis) -> str:
    """A run whose source gave 4 partitions: 2 children done, 1 queued, 1 not dispatched yet."""
    store = RunStore(conn)
    store.create_run(mapped, run_id="map-cli")
    conn.set("rqdag:run:{map-cli}:lease", "c1")
    names = ["p00", "p01", "p02", "p03"]
    store_result(conn, "map-cli", "partitions", TaskResult.success(names))
    store.write_expansion("map-cli", "c1", "load", Expansion(names, names))
    store_result(conn, "map-cli", "load[p00]", TaskResult.success({"partition": "p00"}))
    store_result(conn, "map-cli", "load[p01]", TaskResult.failure("RuntimeError: broken"))
    dispatch(conn, "map-cli", "load[p02]", f"{MODULE}:load")
    return "map-cli"


def test_status_shows_one_line_per_mapped_task_and_expand_lists_each_child(
    redis_conn: redis.Redis, redis_url: str
) -> None:
    run_id = half_done_map(redis_conn)
    out = invoke("status", run_id, "--redis", redis_url).output
    assert "load  1/4 success, 1 failure, 1 queued, 1 pending" in out.splitlines()
    assert "load[p00]" not in out
    expanded = invoke("status", run_id, "--expand", "--redis", redis_url).output
    for child in ("load[p00]", "load[p01]", "load[p02]"):
        assert child in expanded
    assert "1/4 success" not in expanded


def test_inspect_takes_a_childs_name_and_graph_draws_the_mapped_task_with_its_counts(
    redis_conn: redis.Redis, redis_url: str
) -> None:
    run_id = half_done_map(redis_conn)
    doc = json.loads(invoke("inspect", run_id, "load[p01]", "--redis", redis_url, "--json").output)
    assert doc["status"] == "failure" and doc["result"]["message"] == "RuntimeError: broken"
    assert doc["definition"]["func"] == f"{MODULE}:load"
    assert doc["definition"]["depends_on"] == ["partitions"]
    drawing = invoke("graph", run_id, "--redis", redis_url).output
    assert "load (1/4 success, 1 failure, 2 pending)" in drawing
    assert "load[p00]" not in drawing


def test_watch_counts_the_children(redis_conn: redis.Redis, redis_url: str) -> None:
    from rqdag.cli.live import read_view

    view = read_view(RunStore(redis_conn), half_done_map(redis_conn))
    assert view.total == 3 + 4
    assert view.counts["success"] == 2 and view.counts["failure"] == 1 and view.counts["queued"] == 1
