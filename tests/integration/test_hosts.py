"""Several hosts: Redis, a coordinator and two workers, each in its own network namespace.

Each namespace has its own address on a veth link to the Redis host, so every
byte between them crosses a (virtual) network, as between machines. The processes
are stopped (by ``procs``) before the namespaces are deleted. Needs root
and iproute2 (as in CI); elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rqdag.local.redis_server import RedisServer
from tests.support import REPO
from tests.support.processes import Procs, rqdag_command

PASSWORD = "hosts-test-secret"
HOSTS = ("coord", "w1", "w2")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces() -> Iterator[dict[str, str]]:
    """Namespace names: 'redis' and one per host, linked to 'redis' by veth pairs."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    tag = uuid.uuid4().hex[:6]
    names = {role: f"rqdag-{role}-{tag}" for role in ("redis", *HOSTS)}
    made: list[str] = []
    try:
        for ns in names.values():
            try:
                _ip("netns", "add", ns)
            except subprocess.CalledProcessError as exc:
                pytest.skip(f"cannot create a network namespace: {exc.stderr.decode().strip()}")
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        for i, host in enumerate(HOSTS, start=1):
            near, far = f"vr{i}{tag}", f"vh{i}{tag}"
            _ip(
                "link",
                "add",
                near,
                "netns",
                names["redis"],
                "type",
                "veth",
                "peer",
                "name",
                far,
                "netns",
                names[host],
            )
            _ip("-n", names["redis"], "addr", "add", f"10.77.{i}.1/30", "dev", near)
            _ip("-n", names[host], "addr", "add", f"10.77.{i}.2/30", "dev", far)
            _ip("-n", names["redis"], "link", "set", near, "up")
            _ip("-n", names[host], "link", "set", far, "up")
        yield names
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _in_ns(ns: str, command: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *command]


def test_workflow_across_hosts_in_separate_network_namespaces(
    namespaces: dict[str, str], procs: Procs, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis", port=6379, password=PASSWORD)
    server.data_dir.mkdir()
    binds = ["--bind", "10.77.1.1", "10.77.2.1", "10.77.3.1"]
    procs.start(_in_ns(namespaces["redis"], [*server.command(), *binds]), name="redis")
    urls = {host: f"redis://:{PASSWORD}@10.77.{i}.1:6379/0" for i, host in enumerate(HOSTS, start=1)}
    for host in ("w1", "w2"):
        worker = rqdag_command(
            "worker", "--redis", urls[host], "--tasks", "tests.integration.flows", "--name", host
        )
        procs.start(_in_ns(namespaces[host], worker), name=host)
    procs.start(
        _in_ns(namespaces["coord"], rqdag_command("coordinator", "--redis", urls["coord"])), name="coord"
    )
    submit = subprocess.run(
        _in_ns(
            namespaces["coord"],
            rqdag_command(
                "submit",
                "tests.integration.flows:fifty",
                "--redis",
                urls["coord"],
                "--param",
                "sleep_s=0.05",
                "--run-id",
                "across-hosts",
                "--wait",
                "--json",
            ),
        ),
        cwd=REPO,
        env=procs.env(),
        capture_output=True,
        timeout=120,
    )
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("*.log")}
    assert submit.returncode == 0, (submit.stderr.decode()[-2000:], logs)
    document = json.loads(submit.stdout)
    assert document["run"]["status"] == "succeeded"
    workers = {r["metrics"]["worker"] for r in document["results"].values()}
    assert workers == {"w1", "w2"}, f"both hosts' workers ran tasks, got {workers}"
