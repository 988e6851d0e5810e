"""Fixtures of the dashboard's tests: a real uvicorn server in a thread, real rqdag processes.

``serve(app)`` runs the dashboard app with uvicorn on a free loopback port (the
same server ``rqdag dashboard`` runs) and stops it after the block. ``cluster``
is a module's real workers and coordinator on the session's redis-server.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from starlette.applications import Starlette

from rqdag.client import Client, RunHandle
from rqdag.shared.model.workflow import Workflow
from rqdag.web.app import create_app
from rqdag.web.server import DashboardServer
from tests.support.processes import Procs
from tests.support.redis import free_port, private_redis

TOKEN = "test-dashboard-token-0123456789"
TASKS = "tests.web.flows"
WHO = "dashboard@127.0.0.1"  # the actor an action from the tests' client records


def bearer(token: str = TOKEN) -> dict[str, str]:
    """The header an API caller sends."""
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` as ``rqdag dashboard`` does, in a thread, on a free port; yields its base URL."""
    port = free_port()
    server = DashboardServer(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name=f"dashboard-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the dashboard's uvicorn server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Cluster:
    """A private redis-server with real workers and a coordinator, for one test module."""

    url: str
    procs: Procs
    gates: Path
    client: Client
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """One more worker, named ``name`` (its SIGTERM grace is short)."""
        proc = self.procs.worker(self.url, "--shutdown-grace", "0.3", "--name", name, name=name, tasks=TASKS)
        self.workers[name] = proc
        return proc

    def open_gate(self, run_id: str, task: str) -> None:
        """Let the gated task ``task`` of run ``run_id`` finish."""
        (self.gates / run_id).mkdir(exist_ok=True)
        (self.gates / run_id / task).touch()

    def submit(self, workflow: Workflow, run_id: str, **params: object) -> RunHandle:
        """Submit ``workflow`` as ``run_id``; tasks in ``gated`` wait for :meth:`open_gate`."""
        return self.client.submit(workflow, run_id=run_id, params={"gate_dir": str(self.gates), **params})

    @property
    def connection(self) -> redis.Redis:
        """A client of the cluster's Redis."""
        return self.client.connection


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A private Redis, two workers and a coordinator (real processes)."""
    tmp = tmp_path_factory.mktemp("web-cluster")
    gates = tmp / "gates"
    gates.mkdir()
    with private_redis(tmp / "redis", appendonly=True) as server, Procs(tmp) as procs:
        client = Client(server.url)
        try:
            found = Cluster(server.url, procs, gates, client)
            found.start_worker("worker-1")
            found.start_worker("worker-2")
            procs.coordinator(server.url)
            yield found
        finally:
            procs.stop_all()
            client.connection.close()


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[httpx.Client]:
    """A client of the dashboard with a token, served by uvicorn."""
    with (
        serve(create_app(cluster.url, token=TOKEN)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        yield client
