"""Workflows for the tests of finish steps under Redis outages, of the retry budget and of
``Retry(on=...)``, on the gated tasks of :mod:`tests.integration.gated`.

Workers get them with ``--tasks`` :data:`TASKS`. Every attempt writes a ``start``
line to the ledger (``$RQDAG_TEST_LEDGER``) when its body begins and an ``end``
line when it has its result, so a test counts starts from the tasks' own words.
"""

from __future__ import annotations

from typing import Any

from rqdag import Retry, Task, TaskContext, Workflow
from tests.integration.flows import ledger, step
from tests.integration.gated import gated

TASKS = "tests.integration.budget_flows,tests.integration.gated"


def raises_first(ctx: TaskContext) -> dict[str, Any]:
    """Raises the exception named in ``params['raise'][task]`` on attempt 1; succeeds after."""
    ledger(ctx, phase="start")
    if ctx.attempt == 1:
        name = ctx.params["raise"][ctx.task]
        error = {"ConnectionRefusedError": ConnectionRefusedError, "ValueError": ValueError}[name]
        ledger(ctx, phase="end", outcome=name)
        raise error(f"{ctx.task}: planned {name} of attempt 1")
    ledger(ctx, phase="end", outcome="ok")
    return {"task": ctx.task, "attempt": ctx.attempt}


finishing = Workflow(
    "finishing",
    [
        Task("a", gated),
        Task("m", gated, at_most_once=True),
        Task("z", step, depends_on=["a", "m"]),
    ],
)


def lonely(retries: int) -> Workflow:
    """One gated task with ``retries`` retries."""
    return Workflow(f"lonely-{retries}", [Task("only", gated, retry=Retry(attempts=retries))])
