"""Workflows the dashboard's tests run on real workers.

A task named in ``params['gated']`` waits until the file
``<params['gate_dir']>/<run id>/<task>`` exists (or the run is cancelled), so a
test sees it running, then lets it finish.
A task named in ``params['fail']`` raises; ``params['big']`` names tasks that return
about 100 KB of data. Every task logs one line and prints one (its captured logs).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from rqdag import Retry, Task, TaskContext, TaskResult, Workflow

log = logging.getLogger("tests.web.flows")


def wait_for_gate(ctx: TaskContext) -> bool:
    """Wait while this task is gated and its file is absent; False when the run was cancelled."""
    if ctx.task not in ctx.params.get("gated", []):
        return True
    gate = Path(ctx.params["gate_dir"]) / ctx.run_id / ctx.task
    while not gate.exists():
        if ctx.cancelled.wait(0.05):
            return False
    return True


def step(ctx: TaskContext) -> Any:
    """One step of the demo pipeline: waits on its gate, may fail, returns a small summary."""
    log.info("%s: attempt %d starts", ctx.task, ctx.attempt)
    print(f"{ctx.task}: inputs {', '.join(sorted(ctx.inputs)) or 'none'}")
    if not wait_for_gate(ctx):
        return TaskResult.cancelled("the run was cancelled while this task waited")
    time.sleep(float(ctx.params.get("sleep_s", 0.0)))
    if ctx.task in ctx.params.get("fail", []):
        rows = [{"customer": i, "score": None if i == 3 else i / 10} for i in range(5)]
        return _score(rows)
    if ctx.task in ctx.params.get("big", []):
        return {"rows": [{"id": i, "name": f"customer-{i:05d}", "segment": "retail"} for i in range(1500)]}
    return {"task": ctx.task, "attempt": ctx.attempt, "inputs": sorted(ctx.inputs)}


def _score(rows: list[dict[str, Any]]) -> float:
    return sum(_weight(row) for row in rows)


def _weight(row: dict[str, Any]) -> float:
    if row["score"] is None:
        raise ValueError(f"customer {row['customer']} has no score: the feature table is incomplete")
    return float(row["score"])


def build_nightly() -> Workflow:
    """A nightly ETL: three extracts, cleaning and joins, features, a model, a report."""
    wf = Workflow("nightly_etl")
    wf.task(name="extract_orders")(step)
    wf.task(name="extract_customers")(step)
    wf.task(name="extract_products")(step)
    wf.task(name="clean_orders", depends_on=["extract_orders"])(step)
    wf.task(name="join_customers", depends_on=["clean_orders", "extract_customers"])(step)
    wf.task(name="enrich_products", depends_on=["extract_products"])(step)
    wf.task(name="build_features", depends_on=["join_customers", "enrich_products"], timeout_s=600)(step)
    wf.task(name="train_model", depends_on=["build_features"], retry=Retry(attempts=2, delay_s=0.2))(step)
    wf.task(name="score_customers", depends_on=["build_features"], retry=Retry(attempts=1, delay_s=0.2))(step)
    wf.task(name="publish_report", depends_on=["train_model", "score_customers"])(step)
    wf.task(name="notify_team", depends_on=["publish_report"], at_most_once=True)(step)
    return wf


nightly = build_nightly()

payments = Workflow("payments")
payments.task(name="load_invoices")(step)
payments.task(name="charge_cards", depends_on=["load_invoices"], at_most_once=True)(step)
payments.task(name="send_receipts", depends_on=["charge_cards"])(step)

approval = Workflow("approve")  # a wait for a person's signal, then a step
approval.wait("approval")
approval.add(Task("ship", "tests.web.flows:step", depends_on=["approval"]))


def partitions(ctx: TaskContext) -> list[str]:
    """``params['count']`` partition names (3 unless told): the list a mapped task runs over."""
    return [f"p{i}" for i in range(int(ctx.params.get("count", 3)))]


mapped = Workflow(
    "mapped_load",
    [
        Task("partitions", "tests.web.flows:partitions"),
        Task("load", "tests.web.flows:step", map_over="partitions"),
        Task("summarize", "tests.web.flows:step", depends_on=["load"]),
    ],
)
