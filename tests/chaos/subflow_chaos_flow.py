"""The workflows of the subflow chaos test: a parent with a child run of 20 tasks and a wait.

Workers import this module (``--tasks tests.chaos.subflow_chaos_flow``); every
attempt writes ledger lines as :mod:`tests.chaos.chaos_flow` does, under its own
run id (the child's tasks under ``PARENT.billing``).

The child is ``CHAINS`` chains of ``STEPS`` tasks each; its final tasks are the
chains' last steps. The parent is ``prepare -> billing.params -> billing`` (the
child run) beside ``prepare -> approval`` (a wait), both joined by ``ship``.
"""

from __future__ import annotations

import time
from typing import Any

from rqdag import Retry, Task, TaskContext, Workflow
from tests.chaos.chaos_flow import write_ledger

MODULE = "tests.chaos.subflow_chaos_flow"
CHAINS = 5
STEPS = 4


def step_name(chain: int, step: int) -> str:
    """The child task at ``step`` of ``chain``."""
    return f"c{chain}s{step}"


def child_names() -> list[str]:
    """Every task of the child workflow."""
    return [step_name(c, s) for c in range(CHAINS) for s in range(STEPS)]


def final_names() -> list[str]:
    """The child workflow's final tasks: the last step of each chain."""
    return [step_name(c, STEPS - 1) for c in range(CHAINS)]


def step(ctx: TaskContext) -> dict[str, Any]:
    """A child task: sleeps ``params['sleep_s'][task]``; returns its name and its chain so far."""
    write_ledger(ctx, "start")
    time.sleep(float(ctx.params["sleep_s"][ctx.task]))
    write_ledger(ctx, "end", outcome="ok")
    before = [row["path"] for row in ctx.inputs.values()]
    return {"task": ctx.task, "path": [*(before[0] if before else []), ctx.task]}


def child_workflow() -> Workflow:
    """``CHAINS`` chains of ``STEPS`` tasks."""
    tasks = [
        Task(
            step_name(c, s),
            f"{MODULE}:step",
            depends_on=[step_name(c, s - 1)] if s else [],
            retry=Retry(attempts=3),
        )
        for c in range(CHAINS)
        for s in range(STEPS)
    ]
    return Workflow("chaos-billing", tasks)


def prepare(ctx: TaskContext) -> int:
    """The parent's first task."""
    write_ledger(ctx, "start")
    time.sleep(0.2)
    write_ledger(ctx, "end", outcome="ok")
    return len(ctx.params["child_sleep_s"])


def ship(ctx: TaskContext) -> dict[str, Any]:
    """The parent's last task: what the child run and the wait gave it."""
    write_ledger(ctx, "start")
    write_ledger(ctx, "end", outcome="ok")
    return dict(ctx.inputs)


def billing_params(ctx: TaskContext) -> dict[str, Any]:
    """The subflow's function (the task ``billing.params``): the child run's params."""
    write_ledger(ctx, "start")
    write_ledger(ctx, "end", outcome="ok")
    return {"sleep_s": ctx.params["child_sleep_s"], "tasks": ctx.inputs["prepare"]}


def parent_workflow() -> Workflow:
    """prepare -> billing (the child run), prepare -> approval (a wait); both -> ship."""
    wf = Workflow("chaos-subflow")
    wf.add(Task("prepare", f"{MODULE}:prepare", retry=Retry(attempts=3)))

    wf.subflow(child_workflow(), "billing", depends_on=["prepare"], retry=Retry(attempts=3))(billing_params)
    wf.wait("approval", depends_on=["prepare"], timeout_s=600)
    wf.add(Task("ship", f"{MODULE}:ship", depends_on=["billing", "approval"], retry=Retry(attempts=3)))
    return wf
