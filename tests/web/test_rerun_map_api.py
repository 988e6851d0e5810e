"""The re-run action and mapped tasks through the dashboard's API, on real workers and Redis."""

from __future__ import annotations

import re
import time

import httpx

from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from rqdag.web.app import create_app
from tests.web.conftest import TOKEN, WHO, Cluster, bearer, serve
from tests.web.flows import mapped, nightly
from tests.web.test_api import cli_json


def finished_at(api: httpx.Client, run_id: str) -> dict[str, float]:
    """Each task's finish time, from the run document."""
    return {t["task"]: t["finished_at"] for t in api.get(f"/api/runs/{run_id}").json()["tasks"]}


def test_rerun_needs_the_token_and_runs_the_task_and_its_downstream_again(
    api: httpx.Client, cluster: Cluster
) -> None:
    handle = cluster.submit(nightly, "api-rerun")
    handle.wait(timeout=60)
    url = "/api/runs/api-rerun/tasks/train_model/rerun"
    for headers in ({}, bearer("wrong-token-wrong-token")):
        assert api.post(url, json={}, headers=headers).status_code == 401
    assert handle.status().epoch == 1
    plan = api.post(url, json={"plan": True}, headers=bearer()).json()
    assert plan == cli_json(cluster.url, "resume", "api-rerun", "--plan", "--rerun", "train_model")
    assert plan["resumed"] is False and plan["rerun"] == ["train_model", "publish_report", "notify_team"]
    before = finished_at(api, "api-rerun")
    asked = time.time()
    reply = api.post(url, json={}, headers=bearer())
    assert reply.status_code == 200 and reply.json()["resumed"] is True, reply.text
    handle.wait(timeout=60)
    assert handle.status().status == "succeeded" and handle.status().epoch == 2
    after = finished_at(api, "api-rerun")
    again = {name for name, at in after.items() if at > asked}
    assert again == set(plan["rerun"])
    assert all(after[n] == before[n] for n in before if n not in again)
    entry = read_audit(RunStore(cluster.connection), "api-rerun")[-1]
    assert entry["kind"] == "resumed" and entry["who"] == WHO and entry["via"] == "token"
    assert entry["rerun"] == plan["rerun"] and entry["epoch"] == 2
    page = api.get("/runs/api-rerun/tasks/train_model")  # its audit has the result set aside
    assert page.status_code == 200 and "set aside (success) when epoch 1 was resumed" in page.text
    missing = api.post("/api/runs/api-rerun/tasks/no_such_task/rerun", json={}, headers=bearer())
    assert missing.status_code == 409 and "no_such_task" in missing.json()["error"]


def test_rerun_from_a_browser_needs_its_csrf_token(cluster: Cluster) -> None:
    handle = cluster.submit(nightly, "api-rerun-session")
    handle.wait(timeout=60)
    with (
        serve(create_app(cluster.url, token=TOKEN)) as base,
        httpx.Client(base_url=base, timeout=30) as browser,
    ):
        signed = browser.post("/login", data={"token": TOKEN}, headers={"Origin": base})
        assert signed.status_code == 303
        page = browser.get("/runs/api-rerun-session/tasks/publish_report").text
        assert 'id="rerun-task"' in page
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]*)">', page)
        assert found is not None
        url = "/api/runs/api-rerun-session/tasks/publish_report/rerun"
        refused = browser.post(url, json={}, headers={"Origin": base})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        cross = browser.post(
            url, json={}, headers={"Origin": "http://evil.example", "X-CSRF-Token": found[1]}
        )
        assert cross.status_code == 403
        assert handle.status().epoch == 1
        ok = browser.post(url, json={}, headers={"Origin": base, "X-CSRF-Token": found[1]})
        assert ok.status_code == 200 and ok.json()["rerun"] == ["publish_report", "notify_team"], ok.text
    handle.wait(timeout=60)
    assert handle.status().epoch == 2 and handle.status().status == "succeeded"
    assert read_audit(RunStore(cluster.connection), "api-rerun-session")[-1]["via"] == "session"


def test_a_mapped_task_is_one_node_with_counts_and_its_children_stay_in_the_document(
    api: httpx.Client, cluster: Cluster
) -> None:
    handle = cluster.submit(mapped, "api-mapped", count=4)
    handle.wait(timeout=60)
    doc = api.get("/api/runs/api-mapped").json()
    children = [f"load[{i}]" for i in range(4)]
    assert [t["task"] for t in doc["tasks"]] == ["partitions", "load", "summarize", *children]
    status = cli_json(cluster.url, "status", "api-mapped")
    assert set(doc["results"]) == set(status["results"]) == {"partitions", "load", "summarize", *children}
    assert doc["mapped"] == {"load": {"counts": "4/4", "line": "4/4 success", "status": "success"}}
    page = api.get("/runs/api-mapped").text
    nodes = re.findall(r'<g class="node st-(\w+)" data-task="([^"]+)"', page)
    assert sorted(nodes) == [("success", "load"), ("success", "partitions"), ("success", "summarize")]
    assert 'data-mapped="4/4"' in page and ">load 4/4<" in page
