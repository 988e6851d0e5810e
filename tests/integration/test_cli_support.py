"""The CLI tests' workflows (their workers import this module) and a cluster they share.

``cluster``: one private redis-server, one worker and one coordinator (both
logging JSON) for a whole test module; tests tell their runs apart by run id.
The CLI helpers themselves (in-process, pipes, pseudo-terminal) are in
:mod:`tests.support.cli`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rqdag import Task, TaskContext, Workflow
from rqdag.client import Client, RunHandle
from tests.integration.flows import step
from tests.support.processes import Procs
from tests.support.redis import private_redis
from tests.support.wait import wait_until


def build_chain(length: int = 6) -> Workflow:
    """``s0 -> s1 -> ...``: each task sleeps ``params['sleep_s']``."""
    flow = Workflow("chain")
    for i in range(length):
        flow.add(Task(f"s{i}", step, depends_on=[f"s{i - 1}"] if i else []))
    return flow


chain = build_chain()


def noisy(ctx: TaskContext) -> int:
    """Logs one line from inside the task, through the standard logging module."""
    logging.getLogger("tests.noisy").info("working on %s", ctx.task)
    return ctx.attempt


noisy_flow = Workflow("noisy")
noisy_flow.add(Task("speak", noisy))

careful = Workflow("careful")  # an at-most-once task (it sleeps params['sleep_s']), then a receipt
careful.add(Task("charge", step, at_most_once=True))
careful.add(Task("receipt", noisy, depends_on=["charge"]))

CHAIN = "tests.integration.test_cli_support:chain"
RECOVERABLE = "tests.integration.flows:recoverable"
WORKER_TASKS = "tests.integration.flows,tests.integration.test_cli_support"


@dataclass
class Cluster:
    """A private Redis with a worker and a coordinator, shared by a test module."""

    url: str
    procs: Procs
    client: Client

    def finished(self, workflow: Workflow, run_id: str, **params: Any) -> RunHandle:
        """Submit ``workflow`` as ``run_id`` and wait for it to end."""
        handle = self.client.submit(workflow, params=params, run_id=run_id)
        handle.wait(timeout=60)
        return handle

    def started(self, workflow: Workflow, run_id: str, **params: Any) -> RunHandle:
        """Submit ``workflow`` and wait until its first task is running."""
        handle = self.client.submit(workflow, params=params, run_id=run_id)
        wait_until(lambda: handle.status().status == "running", 30, f"run {run_id} to start")
        return handle


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One Redis, worker and coordinator for the module; all stopped after it."""
    with (
        private_redis(tmp_path_factory.mktemp("cli-redis"), appendonly=False) as server,
        Procs(tmp_path_factory.mktemp("cli-procs")) as procs,
    ):
        procs.worker(server.url, "--log-format", "json", "--name", "w1", name="worker", tasks=WORKER_TASKS)
        procs.coordinator(server.url, "--log-format", "json", "--lease-ttl", "3")
        client = Client(server.url)
        yield Cluster(server.url, procs, client)
        client.connection.close()
