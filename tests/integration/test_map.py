"""Mapped tasks on real workers: expansion, aggregate, coordinator kills, resume by KEY."""

from __future__ import annotations

import os
import signal

import pytest

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.shared.model.mapping import Expansion
from rqdag.shared.store.runs import RunStore
from tests.integration.map_flows import MODULE as TASKS
from tests.integration.map_flows import mapped, tolerant
from tests.support.ledger import successes_ran_once
from tests.support.processes import Procs
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(180)

NAMES = [f"p{i:02d}" for i in range(20)]
CHILDREN = [f"load[{n}]" for n in NAMES]


def started(lines: list[dict[str, object]], task: str) -> int:
    return sum(1 for line in lines if line["task"] == task)


def test_a_map_of_twenty_runs_each_child_once_and_aggregates_in_item_order(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url, name="w1", tasks=TASKS)
    procs.worker(redis_url, name="w2", tasks=TASKS)
    procs.coordinator(redis_url)
    run = Client(redis_url).submit(mapped, params={"count": 20}, run_id="map-20")
    results = run.wait(timeout=60)
    assert run.status().status == "succeeded", {n: r.message for n, r in results.items()}
    assert set(results) == {"partitions", "load", "summarize", *CHILDREN}
    assert [row["partition"] for row in results["load"].data] == NAMES
    assert all(results[c].data == {"partition": c[5:-1], "seen": 20} for c in CHILDREN)
    assert results["summarize"].data == NAMES
    assert successes_ran_once(procs.ledger_lines(), ["partitions", *CHILDREN, "summarize"]) == {}


def test_coordinator_killed_after_the_source_and_mid_children_loses_and_doubles_nothing(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url, name="w1", tasks=TASKS)
    client = Client(redis_url)
    store = RunStore(client.connection)
    first = procs.coordinator(redis_url, "--lease-ttl", "2", name="c1")
    run = client.submit(mapped, params={"count": 20, "sleep_s": 0.15}, run_id="map-kill")

    wait_until(
        lambda: "partitions" in store.read_state(run.run_id).results, 30, "the source's success", 0.005
    )
    os.kill(first.pid, signal.SIGKILL)  # right after the source succeeded
    first.wait()
    second = procs.coordinator(redis_url, "--lease-ttl", "2", name="c2")

    def mid_children() -> bool:
        done = [n for n in store.read_state(run.run_id).results if n.startswith("load[")]
        return 3 <= len(done) < 15

    wait_until(mid_children, 60, "some children done, some not")
    os.kill(second.pid, signal.SIGKILL)
    second.wait()
    procs.coordinator(redis_url, "--lease-ttl", "2", name="c3")
    results = run.wait(timeout=90)

    assert run.status().status == "succeeded"
    lines = procs.ledger_lines()
    assert successes_ran_once(lines, ["partitions", *CHILDREN, "summarize"]) == {}
    assert [row["partition"] for row in results["load"].data] == NAMES
    assert results["summarize"].data == NAMES
    assert sorted(store.read_expansions(run.run_id)["load"].keys) == NAMES


def test_resume_with_reordered_items_keeps_the_successful_children_of_the_same_key(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url, tasks=TASKS)
    procs.coordinator(redis_url)
    client = Client(redis_url)
    run = client.submit(mapped, params={"count": 6, "broken": ["p01", "p04"]}, run_id="map-resume")
    first = run.wait(timeout=60)
    assert run.status().status == "failed"
    assert first["load"].status is TaskStatus.FAILURE
    assert first["load"].message.startswith("2 of 6 children did not succeed (first: 'load[p01]' failed")
    assert first["summarize"].status is TaskStatus.SKIPPED
    # fixed, and the source gives its items in the other order this time
    params = b'{"count": 6, "broken": ["p01", "p04"], "fixed": true, "reverse": true}'
    client.connection.hset("rqdag:run:{map-resume}:meta", "params", params)
    client.connection.hdel("rqdag:run:{map-resume}:results", "partitions")  # the source runs again
    client.resume("map-resume")
    second = run.wait(timeout=60)
    assert run.status().status == "succeeded"
    order = ["p05", "p04", "p03", "p02", "p01", "p00"]
    assert [row["partition"] for row in second["load"].data] == order
    counts = {f"load[{n}]": started(procs.ledger_lines(), f"load[{n}]") for n in order}
    assert counts == {
        "load[p00]": 1,
        "load[p01]": 2,
        "load[p02]": 1,
        "load[p03]": 1,
        "load[p04]": 2,
        "load[p05]": 1,
    }
    for kept in ("load[p00]", "load[p02]", "load[p03]", "load[p05]"):
        assert second[kept] == first[kept]


def test_a_partial_expansion_of_a_dead_coordinator_is_ignored(redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    store = RunStore(redis_conn)
    store.create_run(mapped, run_id="partial")
    redis_conn.set("rqdag:run:{partial}:lease", "me")
    # rows of an expansion whose marker was never written (its coordinator died), then a complete one
    dead = b'{"map": "load", "id": "dead", "start": 0, "keys": ["zz"], "items": ["zz"]}'
    redis_conn.hset("rqdag:run:{partial}:children", "load#dead#0", dead)
    assert store.read_expansions("partial") == {}
    store.write_expansion("partial", "me", "load", Expansion(["a", "b"], ["a", "b"]))
    assert store.read_expansions("partial") == {"load": Expansion(["a", "b"], ["a", "b"])}
    redis_conn.set("rqdag:run:{partial}:lease", "someone-else")
    with pytest.raises(Exception, match="lease"):
        store.write_expansion("partial", "me", "load", Expansion(["c"], ["c"]))


def test_continue_on_error_passes_the_successful_childrens_data_on_to_a_worker(
    redis_url: str, procs: Procs
) -> None:
    procs.worker(redis_url, tasks=TASKS)
    procs.coordinator(redis_url)
    run = Client(redis_url).submit(tolerant, params={"count": 4, "broken": ["p02"]}, run_id="map-tolerant")
    results = run.wait(timeout=60)
    assert results["load"].status is TaskStatus.FAILURE
    assert results["summarize"].status is TaskStatus.SUCCESS
    assert results["summarize"].data == ["p00", "p01", "p03"]
