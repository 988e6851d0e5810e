"""Workflows for the concurrent worker's tests: async tasks, blocking ones, a hung one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rqdag import TaskContext, Workflow
from tests.integration.flows import ledger, slow


async def nap(ctx: TaskContext) -> dict[str, Any]:
    """Records its start and end around ``await asyncio.sleep(params['nap_s'])`` (default 0.5 s)."""
    ledger(ctx, phase="start")
    await asyncio.sleep(float(ctx.params.get("nap_s", 0.5)))
    ledger(ctx, phase="end")
    return {"n": 1 + sum(int(v["n"]) for v in ctx.inputs.values()), "task": ctx.task}


async def hang(ctx: TaskContext) -> None:
    """Awaits far longer than any test: only its timeout ends it."""
    ledger(ctx, phase="start")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        ledger(ctx, phase="cancelled")
        raise


def block(ctx: TaskContext) -> str:
    """Records its start and end around ``time.sleep(params['block_s'])`` (default 1 s)."""
    ledger(ctx, phase="start")
    time.sleep(float(ctx.params.get("block_s", 1.0)))
    ledger(ctx, phase="end")
    return ctx.task


asynchronous = Workflow("asynchronous")
asynchronous.task(name="a")(nap)
asynchronous.task(name="b", depends_on=["a"])(nap)
asynchronous.task(name="c", depends_on=["a"])(nap)
asynchronous.task(name="d", depends_on=["b", "c"])(nap)

four_blocking = Workflow("four_blocking")
for _i in range(4):
    four_blocking.task(name=f"t{_i}")(block)

hung = Workflow("hung")
hung.task(name="stuck", timeout_s=1.0)(hang)
for _i in range(3):
    hung.task(name=f"ok{_i}")(nap)

# many in flight on one worker: the lost at-least-once ones run again, the at-most-once ones never
in_flight = Workflow("in_flight")
for _i in range(3):
    in_flight.task(name=f"b{_i}")(slow)
in_flight.task(name="m", at_most_once=True)(slow)

# a batch in flight on one worker of 8 slots: six at-least-once tasks, two at-most-once
batch_in_flight = Workflow("batch_in_flight")
for _i in range(6):
    batch_in_flight.task(name=f"b{_i}")(slow)
for _i in range(2):
    batch_in_flight.task(name=f"m{_i}", at_most_once=True)(slow)
