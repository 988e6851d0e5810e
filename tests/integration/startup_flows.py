"""Workflows of the start-up tests (tests/integration/test_startup_*.py).

Their tasks write the same ledger as :mod:`tests.integration.flows` (one line per
start, naming the pid that ran it), so a test proves from the tasks' own words
which process served which job.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rqdag import TaskContext, Workflow
from tests.integration.flows import ledger, step

REAP_WAIT_S = 5.0


def forks(ctx: TaskContext) -> dict[str, Any]:
    """Forks; the child records itself and returns (or raises, in task ``fork_raises``).

    The parent waits up to REAP_WAIT_S for the child and returns its exit status
    (None when the child had not ended by then).
    """
    ledger(ctx, phase="parent")
    child = os.fork()
    if child == 0:
        ledger(ctx, phase="child")
        if ctx.task == "fork_raises":
            raise RuntimeError("the forked child fails")
        return {"child": True}
    return {"child_pid": child, "child_exit": _reap(child)}


def _reap(pid: int) -> int | None:
    deadline = time.monotonic() + REAP_WAIT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    return None


forker = Workflow("forker")
forker.task(name="fork_returns")(forks)
forker.task(name="fork_raises", depends_on=["fork_returns"])(forks)


def build_wide(width: int = 24) -> Workflow:
    """A root, ``width`` tasks after it, a join: many jobs for whoever serves the queue."""
    wf = Workflow("wide")
    wf.task(name="root")(step)
    for i in range(width):
        wf.task(name=f"t{i}", depends_on=["root"])(step)
    wf.task(name="join", depends_on=[f"t{i}" for i in range(width)])(step)
    return wf


wide = build_wide()

short = Workflow("short")
short.task(name="a")(step)
short.task(name="b", depends_on=["a"])(step)
short.task(name="c", depends_on=["a"])(step)
