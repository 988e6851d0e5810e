"""The task functions of the benchmarks: both sides run a function that does nothing.

Workers import this module (``--tasks bench.tasks`` for rqdag workers, RQ's import
path ``bench.tasks.raw_noop`` for raw RQ workers).
"""

from __future__ import annotations

import asyncio
import time

from rqdag import TaskContext


def noop(ctx: TaskContext) -> None:
    """An rqdag task that does nothing."""
    return None


def items(ctx: TaskContext) -> list[int]:
    """The source of a mapped fan-out: ``params['width']`` items."""
    return list(range(int(ctx.params["width"])))


def raw_noop() -> None:
    """A raw RQ job that does nothing."""
    return None


async def async_nap(ctx: TaskContext) -> None:
    """An async rqdag task that awaits ``params['nap_s']`` seconds."""
    await asyncio.sleep(float(ctx.params.get("nap_s", 0.1)))


def thread_nap(ctx: TaskContext) -> None:
    """A plain rqdag task that blocks its thread ``params['nap_s']`` seconds."""
    time.sleep(float(ctx.params.get("nap_s", 0.1)))
