"""Workflows that the integration tests run on real workers.

Every task appends a line to the ledger file named by $RQDAG_TEST_LEDGER, so a
test can prove from the tasks' own words what ran, how often and where.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from rqdag import Retry, Task, TaskContext, Workflow


def ledger(ctx: TaskContext, **extra: Any) -> None:
    """Append one line: run, task, attempt, pid, host, time."""
    path = os.environ.get("RQDAG_TEST_LEDGER")
    if not path:
        return
    line = {
        "run_id": ctx.run_id,
        "task": ctx.task,
        "attempt": ctx.attempt,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "at": time.time(),
        **extra,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def step(ctx: TaskContext) -> dict[str, Any]:
    """A generic task: records itself, sleeps ``params['sleep_s']``, sums its inputs."""
    ledger(ctx)
    time.sleep(float(ctx.params.get("sleep_s", 0.0)))
    total = 1 + sum(int(v["n"]) for v in ctx.inputs.values() if isinstance(v, dict))
    return {"n": total, "task": ctx.task}


def fails_unless_fixed(ctx: TaskContext) -> str:
    """Fails unless ``params['fixed']`` is true."""
    ledger(ctx)
    if not ctx.params.get("fixed"):
        raise RuntimeError("not fixed yet")
    return "fixed"


def flaky_once(ctx: TaskContext) -> int:
    """Fails on the first attempt only."""
    ledger(ctx)
    if ctx.attempt == 1:
        raise ConnectionError("first attempt fails")
    return ctx.attempt


def build_fifty() -> Workflow:
    """50 tasks: a root, 4 chains of 6, a fan-in, then a fan-out of 24 and a final join."""
    wf = Workflow("fifty")
    wf.add(Task("root", step))
    joins = []
    for c in range(4):
        prev = "root"
        for i in range(6):
            name = f"chain{c}_{i}"
            wf.add(Task(name, step, depends_on=[prev]))
            prev = name
        joins.append(prev)
    wf.add(Task("fan_in", step, depends_on=joins))
    leaves = []
    for i in range(23):
        wf.add(Task(f"leaf{i}", step, depends_on=["fan_in"]))
        leaves.append(f"leaf{i}")
    wf.add(Task("final", step, depends_on=leaves))
    return wf


fifty = build_fifty()

recoverable = Workflow("recoverable")
recoverable.task(name="a")(step)
recoverable.task(name="b", depends_on=["a"])(fails_unless_fixed)
recoverable.task(name="c", depends_on=["b"])(step)
recoverable.task(name="d", depends_on=["a"], retry=Retry(attempts=1))(flaky_once)


def slow(ctx: TaskContext) -> dict[str, Any]:
    """Records its start, sleeps ``params['slow_s']`` (default 3 s), records its end."""
    ledger(ctx, phase="start")
    deadline = time.monotonic() + float(ctx.params.get("slow_s", 3.0))
    while time.monotonic() < deadline and not ctx.cancelled.is_set():
        time.sleep(0.05)
    ledger(ctx, phase="end")
    return {"n": 1, "task": ctx.task}


faulty = Workflow("faulty")
faulty.task(name="a")(step)
faulty.task(name="b", depends_on=["a"])(slow)
faulty.task(name="c", depends_on=["b"])(step)
faulty.task(name="m", depends_on=["a"], at_most_once=True)(slow)
faulty.task(name="n", depends_on=["m"])(step)
faulty.task(name="x", depends_on=["a"])(step)


def padded(ctx: TaskContext) -> dict[str, Any]:
    """Returns ``params['pad']`` bytes of padding (by task name) and the lengths of its inputs."""
    ledger(ctx)
    size = int(ctx.params.get("pad", {}).get(ctx.task, 0))
    return {"pad": "x" * size, "seen": {k: len(v["pad"]) for k, v in ctx.inputs.items()}}


sized = Workflow("sized")
sized.task(name="small")(padded)
sized.task(name="large")(padded)
sized.task(name="join", depends_on=["small", "large"])(padded)
