"""At-most-once with ``Retry(on=...)`` on a real worker: started again only after a listed
exception (the worker checks the raised exception), never after any other."""

from __future__ import annotations

from collections import Counter

from rqdag import Client, Retry, Task, TaskStatus, Workflow
from tests.integration.budget_flows import TASKS, raises_first
from tests.support.processes import Procs


def test_an_at_most_once_task_runs_again_only_after_an_exception_listed_in_on(
    redis_url: str, procs: Procs
) -> None:
    retry = Retry(attempts=3, on=(ConnectionRefusedError,))
    flow = Workflow(
        "guarded",
        [
            Task("nothing_happened", raises_first, retry=retry, at_most_once=True),
            Task("something_happened", raises_first, retry=retry, at_most_once=True),
        ],
    )
    procs.worker(redis_url, tasks=TASKS)
    procs.coordinator(redis_url)
    raised = {"nothing_happened": "ConnectionRefusedError", "something_happened": "ValueError"}
    run = Client(redis_url).submit(flow, params={"raise": raised}, run_id="guarded")
    results = run.wait(timeout=60)
    starts = Counter(line["task"] for line in procs.ledger_lines() if line.get("phase") == "start")
    assert starts == {"nothing_happened": 2, "something_happened": 1}
    assert results["nothing_happened"].status is TaskStatus.SUCCESS
    assert results["nothing_happened"].metrics.attempt == 2
    failed = results["something_happened"]
    assert failed.status is TaskStatus.FAILURE and "ValueError" in (failed.message or "")
    assert not failed.in_doubt
