"""A mapped workflow that the integration tests run on real workers (ledger lines as flows.py)."""

from __future__ import annotations

import time
from typing import Any

from rqdag import Retry, Task, TaskContext, Workflow
from tests.integration.flows import ledger

MODULE = "tests.integration.map_flows"


def partitions(ctx: TaskContext) -> list[str]:
    """``params['count']`` partition names, reversed when ``params['reverse']``."""
    ledger(ctx)
    items = [f"p{i:02d}" for i in range(int(ctx.params.get("count", 20)))]
    return items[::-1] if ctx.params.get("reverse") else items


def partition_key(item: str) -> str:
    """A child's KEY: the partition's name."""
    return item


def load(ctx: TaskContext) -> dict[str, Any]:
    """One partition: sleeps ``params['sleep_s']``; fails for ``params['broken']`` unless ``fixed``."""
    ledger(ctx, item=ctx.item)
    time.sleep(float(ctx.params.get("sleep_s", 0.0)))
    if ctx.item in ctx.params.get("broken", ()) and not ctx.params.get("fixed"):
        raise RuntimeError(f"partition {ctx.item} is broken")
    return {"partition": ctx.item, "seen": len(ctx.inputs["partitions"])}


def summarize(ctx: TaskContext) -> list[str]:
    """The partitions the children loaded, in item order."""
    ledger(ctx)
    return [row["partition"] for row in ctx.inputs["load"]]


def build_mapped(*, continue_on_error: bool = False) -> Workflow:
    """partitions -> load[KEY] (one child per partition) -> summarize."""
    return Workflow(
        "mapped-tolerant" if continue_on_error else "mapped",
        [
            Task("partitions", f"{MODULE}:partitions"),
            Task(
                "load",
                f"{MODULE}:load",
                map_over="partitions",
                map_key=f"{MODULE}:partition_key",
                retry=Retry(attempts=0),
                continue_on_error=continue_on_error,
            ),
            Task("summarize", f"{MODULE}:summarize", depends_on=["load"]),
        ],
    )


mapped = build_mapped()
tolerant = build_mapped(continue_on_error=True)
