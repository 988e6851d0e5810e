"""Task functions for the worker tests, given to workers with ``--tasks``.

Every task appends one JSON line to the ledger file named by the environment
variable ``RQDAG_TEST_LEDGER``, so a test can tell exactly what ran, where and
how often.
"""

from __future__ import annotations

import json
import os
import time
from os import getpid  # noqa: F401  (imported, not defined here: not a registered task)
from typing import Any

from rqdag import Task, TaskContext, Workflow

LEDGER_ENV = "RQDAG_TEST_LEDGER"


def write_ledger(kind: str, **fields: Any) -> None:
    """Append one line to the ledger (no-op when no ledger is configured)."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), "at": time.time(), **fields})
    with open(path, "a", encoding="utf-8") as ledger:
        ledger.write(line + "\n")


def _ran(ctx: TaskContext) -> None:
    write_ledger("task", run_id=ctx.run_id, task=ctx.task, attempt=ctx.attempt, key=ctx.idempotency_key)


def echo(ctx: TaskContext) -> dict[str, Any]:
    """Return what the task saw."""
    _ran(ctx)
    return {
        "params": dict(ctx.params),
        "inputs": dict(ctx.inputs),
        "idempotency_key": ctx.idempotency_key,
        "context": ctx.context,
    }


def fail(ctx: TaskContext) -> None:
    """Always fail."""
    _ran(ctx)
    raise RuntimeError(f"boom in {ctx.task}")


def sleepy(ctx: TaskContext) -> str:
    """Sleep ``params['sleep']`` seconds (default 5)."""
    _ran(ctx)
    time.sleep(float(ctx.params.get("sleep", 5)))
    return "woke up"


def until_cancelled(ctx: TaskContext) -> bool:
    """Wait up to ``params['wait']`` seconds (default 4) for ``ctx.cancelled``."""
    _ran(ctx)
    return ctx.cancelled.wait(float(ctx.params.get("wait", 4)))


def big(ctx: TaskContext) -> str:
    """Return a string of ``params['size']`` characters."""
    _ran(ctx)
    return "x" * int(ctx.params["size"])


def never(ctx: TaskContext) -> bool:
    """A condition that is never met."""
    return False


def make_context() -> dict[str, Any]:
    """The ``--context`` factory: records each call in the ledger."""
    write_ledger("context")
    return {"pid": os.getpid()}


def write_marker(path: str) -> None:
    """Create ``path``: proof of execution, should anything ever call it."""
    with open(path, "w", encoding="utf-8") as marker:
        marker.write("ran\n")


flow = Workflow(
    "worker-tests",
    [
        Task("checked", func=echo, condition="operator:truth"),
        Task("anonymous", func=lambda ctx: None),
    ],
)
