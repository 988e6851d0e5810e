"""The mapped workflow of the map chaos test: a source of ~100 items, one child per item, a total.

Workers import this module (``--tasks tests.chaos.map_chaos_flow``); every attempt
writes ledger lines as :mod:`tests.chaos.chaos_flow` does.
"""

from __future__ import annotations

import time
from typing import Any

from rqdag import Retry, Task, TaskContext, Workflow
from tests.chaos.chaos_flow import write_ledger

MODULE = "tests.chaos.map_chaos_flow"


def items(ctx: TaskContext) -> list[str]:
    """``params['count']`` item names."""
    write_ledger(ctx, "start")
    time.sleep(0.3)
    write_ledger(ctx, "end", outcome="ok")
    return [f"c{i:03d}" for i in range(int(ctx.params["count"]))]


def key_of(item: str) -> str:
    """A child's KEY: its item."""
    return item


def child(ctx: TaskContext) -> dict[str, Any]:
    """One item: sleeps ``params['sleep_s'][item]``, records its start and end."""
    write_ledger(ctx, "start", item=ctx.item)
    time.sleep(float(ctx.params["sleep_s"][ctx.item]))
    write_ledger(ctx, "end", outcome="ok")
    return {"item": ctx.item, "attempt": ctx.attempt}


def total(ctx: TaskContext) -> list[str]:
    """The items the children did, in item order."""
    write_ledger(ctx, "start")
    write_ledger(ctx, "end", outcome="ok")
    return [row["item"] for row in ctx.inputs["child"]]


mapped_chaos = Workflow(
    "chaos-map",
    [
        Task("items", f"{MODULE}:items"),
        Task(
            "child", f"{MODULE}:child", map_over="items", map_key=f"{MODULE}:key_of", retry=Retry(attempts=3)
        ),
        Task("total", f"{MODULE}:total", depends_on=["child"]),
    ],
)
