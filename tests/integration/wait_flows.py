"""Workflows with waits and sleeps that the integration tests run on real workers."""

from __future__ import annotations

import time
from typing import Any

from rqdag import TaskContext, Workflow
from tests.integration.flows import ledger


def prepare(ctx: TaskContext) -> int:
    """Records itself, sleeps ``params['sleep_s']``."""
    ledger(ctx)
    time.sleep(float(ctx.params.get("sleep_s", 0.0)))
    return 7


def ship(ctx: TaskContext) -> Any:
    """Records itself; returns what it got from its dependencies."""
    ledger(ctx)
    return ctx.inputs


def approval_flow(timeout_s: float | None = None) -> Workflow:
    """prepare -> approval (a wait) -> ship."""
    wf = Workflow("approve")
    wf.task("prepare")(prepare)
    wf.wait("approval", depends_on=["prepare"], timeout_s=timeout_s)
    wf.task("ship", depends_on=["approval"])(ship)
    return wf


def sleep_flow(seconds: float) -> Workflow:
    """prepare -> cool_down (a sleep) -> ship."""
    wf = Workflow("cool")
    wf.task("prepare")(prepare)
    wf.sleep("cool_down", seconds=seconds, depends_on=["prepare"])
    wf.task("ship", depends_on=["cool_down"])(ship)
    return wf
