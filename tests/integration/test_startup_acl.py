"""Redis users without the permissions a role needs: the role says which, in one line, at start-up.

Every test runs real processes against its own redis-server, with real ACL users.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
import redis

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.errors import RqdagError
from rqdag.local.redis_server import RedisServer
from rqdag.shared.store.acl import acl_rules, check_permissions
from rqdag.shared.store.permissions import (
    coordinator_needs,
    submit_needs,
    worker_needs,
)
from tests.support import REPO
from tests.support.processes import Procs
from tests.support.wait import wait_until

MISSING = {
    "-@scripting": (["~*", "+@all", "-@scripting"], "may not run EVALSHA, SCRIPT LOAD (ACL: +@scripting)"),
    "-xadd": (["~*", "&*", "+@all", "-xadd"], "may not run XADD (ACL: +xadd)"),
    "no ~rq:*": (["~rqdag:*", "&*", "+@all"], "may not touch keys 'rq:*' ("),
}
ROLES = {"coordinator": "a coordinator", "worker": "a worker"}
NOPERM_WORDS = ("no permissions", "can't run this command", "can't access")


def _user(server: RedisServer, name: str, rules: list[str]) -> str:
    """Create ACL user ``name`` (password 'pw') with ``rules``; return its URL."""
    with redis.Redis.from_url(server.url) as admin:
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw", *rules)
    return server.url.replace("redis://", f"redis://{name}:pw@")


def _start(procs: Procs, role: str, url: str) -> subprocess.Popen[bytes]:
    """The service at its default log level (the last --log-level given wins)."""
    quiet = ("--log-level", "info")
    return procs.coordinator(url, *quiet) if role == "coordinator" else procs.worker(url, *quiet)


def _out(procs: Procs, name: str) -> list[str]:
    return [line for line in procs.log(name).splitlines() if line.strip()]


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("missing", sorted(MISSING))
def test_a_service_whose_user_lacks_a_permission_exits_naming_it(
    fresh_redis: Callable[..., RedisServer], procs: Procs, role: str, missing: str
) -> None:
    rules, named = MISSING[missing]
    url = _user(fresh_redis(), "app", rules)
    proc = _start(procs, role, url)
    assert proc.wait(timeout=30) == 2
    out = _out(procs, role)
    assert len(out) == 1, out
    assert out[0].startswith("error: Redis user 'app' "), out
    assert named in out[0] and out[0].endswith(f"needed by {ROLES[role]}"), out


def test_submit_checks_its_own_needs_only(fresh_redis: Callable[..., RedisServer], procs: Procs) -> None:
    server = fresh_redis()
    no_scripts = _user(server, "noscripts", ["~*", "+@all", "-@scripting"])
    only_rq = _user(server, "onlyrq", ["~rq:*", "+@all"])
    target = "tests.integration.startup_flows:short"
    procs.spawn("submit", target, "--redis", no_scripts, "--run-id", "ok", name="allowed")
    refused = procs.spawn("submit", target, "--redis", only_rq, "--run-id", "no", name="refused")
    assert refused.wait(timeout=30) == 2
    out = _out(procs, "refused")
    assert len(out) == 1 and out[0].startswith("error: Redis user 'onlyrq' may not touch keys 'rqdag:*' ("), (
        out
    )
    wait_until(lambda: Client(server.url).run("ok") is not None, 30, "the allowed submit")
    with redis.Redis.from_url(server.url) as admin:
        assert not admin.exists("rqdag:run:{no}:meta"), "a refused submit wrote nothing"


@pytest.mark.parametrize("slots", ["1", "4"], ids=["simple-worker", "concurrent-worker"])
def test_users_granted_exactly_each_role_s_list_run_workflows(
    fresh_redis: Callable[..., RedisServer], procs: Procs, slots: str
) -> None:
    """The lists are complete: users with nothing more than their role's list drive real runs
    (a concurrent worker's batches included)."""
    server = fresh_redis()
    # CONFIG GET is the coordinator's own business: it logs when it may not check persistence
    coordinator = _user(server, "coord", [*acl_rules(coordinator_needs()), "+config|get"])
    worker = _user(server, "work", acl_rules(worker_needs("w1")))
    submitter = _user(server, "sub", acl_rules(submit_needs(wait=True)))
    procs.coordinator(coordinator)
    procs.worker(worker, "--name", "w1", "--concurrency", slots)
    for target, code in (("short", 0), ("recoverable", 1)):
        module = "startup_flows" if target == "short" else "flows"
        args = ("submit", f"tests.integration.{module}:{target}", "--redis", submitter, "--wait")
        proc = procs.spawn(*args, "--run-id", target, name=f"submit-{target}")
        assert proc.wait(timeout=90) == code, procs.log(f"submit-{target}")
    results = Client(server.url).run("recoverable").snapshot()
    assert results["b"].status is TaskStatus.FAILURE and results["d"].metrics.attempt == 2
    starts = [(line["run_id"], line["task"]) for line in procs.ledger_lines()]
    assert sorted(starts) == sorted(
        [("short", t) for t in "abc"] + [("recoverable", t) for t in ("a", "b", "d", "d")]
    )
    for name in ("coordinator", "worker", "submit-short", "submit-recoverable"):
        log = procs.log(name)
        assert not [w for w in NOPERM_WORDS if w in log], f"{name} was refused a command:\n{log}"


def test_a_run_nobody_may_drive_says_why_in_status_watch_and_submit(
    fresh_redis: Callable[..., RedisServer], procs: Procs
) -> None:
    server = fresh_redis()
    app = _user(server, "app", ["~*", "&*", "+@all"])
    procs.coordinator(app)
    procs.worker(server.url)
    wait_until(lambda: "started" in procs.log("coordinator"), 30, "the coordinator to start")
    with redis.Redis.from_url(server.url) as admin:
        admin.execute_command("ACL", "SETUSER", "app", "-xadd")  # revoked while it runs
    waiter = procs.spawn(
        "submit", "tests.integration.startup_flows:short", "--redis", server.url, "--run-id", "stuck",
        "--wait", name="submit",
    )  # fmt: skip
    wait_until(lambda: "waiting: coordinator" in procs.log("submit"), 30, "submit --wait to say why")
    assert waiter.poll() is None
    said = [line for line in _out(procs, "submit") if line.startswith("waiting: ")]
    assert (
        said[0].startswith("waiting: coordinator ")
        and "cannot drive it: Redis user 'app' may not run XADD" in said[0]
    )

    wait_until(lambda: not redis.Redis.from_url(server.url).exists("rqdag:run:{stuck}:lease"), 30, "no lease")
    status = procs.spawn("status", "stuck", "--redis", server.url, name="status")
    assert status.wait(timeout=30) == 0
    text = procs.log("status")
    assert "no coordinator is driving this run" in text and "may not run XADD (ACL: +xadd)" in text, text
    as_json = procs.spawn("status", "stuck", "--redis", server.url, "--json", name="status-json")
    assert as_json.wait(timeout=30) == 0
    body = json.loads(procs.log("status-json"))
    assert body["coordinator"]["lease_owner"] is None
    assert "may not run XADD" in body["coordinator"]["problem"]

    watch = procs.spawn("watch", "stuck", "--redis", server.url, "--json", name="watch")
    wait_until(lambda: procs.log("watch").strip() != "", 30, "watch's first line")
    watch.terminate()
    first = json.loads(procs.log("watch").splitlines()[0])
    assert first["coordinator"]["lease_owner"] is None
    assert "may not run XADD" in first["coordinator"]["problem"]

    with redis.Redis.from_url(server.url) as admin:
        admin.execute_command("ACL", "SETUSER", "app", "+xadd")  # fixed: the run goes on by itself
    assert waiter.wait(timeout=90) == 0


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_without_acl_dryrun_the_probe_names_the_same_permission_and_runs_nothing(
    fresh_redis: Callable[..., RedisServer], missing: str
) -> None:
    """A user who may not run ACL DRYRUN (no @admin) is checked by queueing in a discarded MULTI."""
    rules, _ = MISSING[missing]
    server = fresh_redis()
    said = {}
    for name, extra in (("dry", []), ("probed", ["-@admin"])):
        with redis.Redis.from_url(_user(server, name, [*rules, *extra])) as client:
            for role, needs in (("a coordinator", coordinator_needs()), ("a worker", worker_needs("w1"))):
                with pytest.raises(RqdagError) as refused:
                    check_permissions(client, needs, role=role)
                said[name, role] = str(refused.value).replace(f"'{name}'", "'U'")
            assert client.ping(), "the connection went back to the pool usable (not inside a MULTI)"
    assert said["dry", "a coordinator"] == said["probed", "a coordinator"]
    assert said["dry", "a worker"] == said["probed", "a worker"]
    with redis.Redis.from_url(server.url) as admin:
        assert admin.dbsize() == 0, "checking wrote nothing"


def test_the_acl_that_operations_md_recommends_passes_the_check_and_runs(
    fresh_redis: Callable[..., RedisServer], procs: Procs
) -> None:
    line = next(
        text for text in (REPO / "docs" / "operations.md").read_text().splitlines()
        if text.startswith("ACL SETUSER rqdag on >secret ")
    )  # fmt: skip
    url = _user(fresh_redis(), "rqdag", line.split()[5:])
    procs.coordinator(url, "--log-level", "info")
    procs.worker(url, "--log-level", "info")
    submit = procs.spawn(
        "submit", "tests.integration.startup_flows:short", "--redis", url, "--wait", name="submit"
    )
    assert submit.wait(timeout=60) == 0, procs.log("submit")
    for name in ("coordinator", "worker"):
        assert "Redis user 'rqdag'" not in procs.log(name), procs.log(name)  # not even a warning
