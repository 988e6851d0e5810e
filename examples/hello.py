"""A small ETL-shaped workflow: extract, three parallel transforms, a join, a report.

    rqdag run examples/hello.py:flow --param day=2026-11-28
"""

from __future__ import annotations

import time

from rqdag import Retry, TaskContext, Workflow

flow = Workflow("hello")


@flow.task()
def extract(ctx: TaskContext) -> list[int]:
    """Pretend to read a day of orders."""
    time.sleep(0.2)
    return list(range(1, 11))


@flow.task(depends_on=["extract"])
def total(ctx: TaskContext) -> int:
    """Sum the orders."""
    return sum(ctx.inputs["extract"])


@flow.task(depends_on=["extract"])
def biggest(ctx: TaskContext) -> int:
    """The largest order."""
    return max(ctx.inputs["extract"])


@flow.task(depends_on=["extract"], retry=Retry(attempts=2, delay_s=0.1))
def flaky_enrich(ctx: TaskContext) -> str:
    """Fails on its first attempt, succeeds on the retry."""
    if ctx.attempt == 1:
        raise ConnectionError("upstream hiccup")
    return f"enriched on attempt {ctx.attempt}"


@flow.task(depends_on=["total", "biggest", "flaky_enrich"])
def report(ctx: TaskContext) -> dict[str, object]:
    """Join the branches into one report."""
    return {
        "day": ctx.params.get("day", "today"),
        "total": ctx.inputs["total"],
        "biggest": ctx.inputs["biggest"],
        "note": ctx.inputs["flaky_enrich"],
    }
