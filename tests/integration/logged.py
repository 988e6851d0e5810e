"""Workflows whose tasks write: ``logging`` records, stdout and stderr lines (the logs tests).

A task waits on ``<params['gate_dir']>/<run id>/<task>`` when its name is in
``params['gated']``, after writing its first lines, so a test can follow it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from rqdag import Retry, TaskContext, Workflow

log = logging.getLogger("tests.logged")


def _gate(ctx: TaskContext) -> None:
    if ctx.task not in ctx.params.get("gated", []):
        return
    gate = Path(ctx.params["gate_dir"]) / ctx.run_id / ctx.task
    while not gate.exists() and not ctx.cancelled.wait(0.05):
        pass


def talk(ctx: TaskContext) -> str:
    """Writes one line of each kind, in a known order; fails its first attempt if told to."""
    log.info("one: %s starts attempt %d", ctx.task, ctx.attempt)
    print(f"two: to stdout from attempt {ctx.attempt}")
    print(f"three: to stderr from attempt {ctx.attempt}", file=sys.stderr)
    sys.stdout.write("four: written ")
    sys.stdout.write("in parts\n")
    _gate(ctx)
    log.warning("five: %s ends attempt %d", ctx.task, ctx.attempt)
    if ctx.task in ctx.params.get("fail_first", []) and ctx.attempt == 1:
        raise RuntimeError("the first attempt fails")
    return "done"


def flood(ctx: TaskContext) -> int:
    """Prints more lines than a worker keeps of one attempt."""
    count = int(ctx.params.get("lines", 5000))
    for i in range(count):
        print(f"line {i}")
    return count


def quiet(ctx: TaskContext) -> None:
    """Writes nothing."""
    time.sleep(float(ctx.params.get("sleep_s", 0)))


chatty = Workflow("chatty")
chatty.task(name="talk", retry=Retry(attempts=1, delay_s=0.1))(talk)
chatty.task(name="after", depends_on=["talk"])(talk)

flooding = Workflow("flooding")
flooding.task(name="flood")(flood)
flooding.task(name="quiet")(quiet)
