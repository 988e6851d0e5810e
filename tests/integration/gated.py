"""Tasks that wait for a gate file, for tests that do something to a run while a task is held.

Workers get them with ``--tasks tests.integration.gated``. Each start and each end
goes to the ledger ($RQDAG_TEST_LEDGER) with ``phase``, so a test counts the starts
of a task from the tasks' own words.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rqdag import Retry, Task, TaskContext, Workflow
from tests.integration.flows import flaky_once, ledger, step


def gated(ctx: TaskContext) -> dict[str, Any]:
    """Waits until the file ``params['gate']`` exists (or the attempt is called off)."""
    ledger(ctx, phase="start")
    gate = Path(str(ctx.params["gate"]))
    while not gate.exists() and not ctx.cancelled.is_set():
        time.sleep(0.05)
    ledger(ctx, phase="end" if gate.exists() else "called off")
    return {"n": 1, "task": ctx.task}


def gated_flow(name: str, *, at_most_once: bool = False) -> Workflow:
    """``held`` waits for the gate; ``after`` depends on it."""
    return Workflow(
        name,
        [Task("held", gated, at_most_once=at_most_once), Task("after", step, depends_on=["held"])],
    )


held_once = gated_flow("held-once")
held_at_most_once = gated_flow("held-at-most-once", at_most_once=True)
# its first attempt fails at once; the retry is due RETRY_DELAY_S after that
RETRY_DELAY_S = 6.0
retried_later = Workflow("retried-later", [Task("flaky", flaky_once, retry=Retry(1, delay_s=RETRY_DELAY_S))])


def starts(lines: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How often each task started, from the ledger (``after``-style tasks log no phase)."""
    return Counter(str(line["task"]) for line in lines if line.get("phase") in (None, "start"))


def attempt_starts(lines: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, int]]:
    """How often each (task, attempt) started, from the ledger."""
    return Counter(
        (str(line["task"]), int(line["attempt"])) for line in lines if line.get("phase") in (None, "start")
    )
