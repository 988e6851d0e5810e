"""A task that forks: its child must end at once, never serve jobs as a copy of the worker."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from rqdag import TaskStatus
from rqdag.client import Client
from tests.integration.startup_flows import forker, wide
from tests.support.processes import Procs


def _gone(pid: int) -> bool:
    """True when ``pid`` is no process, or only a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.fixture
def children(procs: Procs) -> Iterator[None]:
    """After the test, SIGKILL any forked child still alive (there are some when the guard fails)."""
    try:
        yield
    finally:
        for line in procs.ledger_lines():
            if line.get("phase") == "child" and not _gone(line["pid"]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(line["pid"], signal.SIGKILL)


@pytest.mark.usefixtures("children")
def test_a_forked_child_that_returns_from_its_task_exits_and_serves_no_job(
    redis_url: str, procs: Procs
) -> None:
    worker = procs.worker(redis_url, tasks="tests.integration.startup_flows")
    procs.coordinator(redis_url)
    client = Client(redis_url)

    first = client.submit(forker, run_id="forks").wait(timeout=60)
    assert first["fork_returns"].status is TaskStatus.SUCCESS
    assert first["fork_raises"].status is TaskStatus.SUCCESS
    children = [line for line in procs.ledger_lines() if line.get("phase") == "child"]
    assert {c["task"] for c in children} == {"fork_returns", "fork_raises"}
    assert all(c["pid"] != worker.pid for c in children)
    # the parent reaped each child: it ended at once, 0 after returning, 1 after raising
    assert first["fork_returns"].data["child_exit"] == 0
    assert first["fork_raises"].data["child_exit"] == 1

    after = client.submit(wide, run_id="after-fork").wait(timeout=90)
    assert all(r.status is TaskStatus.SUCCESS for r in after.values())
    starts = [line for line in procs.ledger_lines() if line["run_id"] == "after-fork"]
    by_task: dict[str, list[int]] = {}
    for line in starts:
        by_task.setdefault(line["task"], []).append(line["pid"])
    assert by_task == {name: [worker.pid] for name in after}, "every job served once, by the worker"

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert [c["pid"] for c in children if not _gone(c["pid"])] == [], "a forked child outlived the worker"
