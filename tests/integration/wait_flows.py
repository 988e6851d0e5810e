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


def charge(ctx: TaskContext) -> dict[str, Any]:
    """A child task: records itself; fails when ``params['fail']`` names it."""
    ledger(ctx)
    time.sleep(float(ctx.params.get("sleep_s", 0.0)))
    if ctx.task in ctx.params.get("fail", []):
        raise RuntimeError(f"{ctx.task} failed")
    return {"task": ctx.task, "orders": ctx.params.get("orders")}


def billing_params(ctx: TaskContext) -> dict[str, Any]:
    """A subflow's function: the child run's params from the parent's."""
    ledger(ctx)
    return {"orders": ctx.inputs["prepare"], **ctx.params.get("child", {})}


def billing_workflow() -> Workflow:
    """invoice -> charge_cards, send_receipts (the child workflow)."""
    wf = Workflow("billing")
    wf.task("invoice")(charge)
    wf.task("charge_cards", depends_on=["invoice"])(charge)
    wf.task("send_receipts", depends_on=["invoice"])(charge)
    return wf


def parent_flow() -> Workflow:
    """prepare -> billing (a child run of billing_workflow) -> ship."""
    wf = Workflow("orders")
    wf.task("prepare")(prepare)
    wf.subflow(billing_workflow(), "billing", depends_on=["prepare"])(billing_params)
    wf.task("ship", depends_on=["billing"])(ship)
    return wf
