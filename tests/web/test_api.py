"""The dashboard's JSON API against a real Redis with real workers and a real coordinator.

Reads are compared with the CLI's ``--json`` documents; every action goes
through the CLI's code and lands in the run's audit stream; actions need the
token (Bearer, or a session cookie with its CSRF token from this origin).
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rqdag.cli import main
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from rqdag.web.app import create_app
from rqdag.web.auth import NEEDS_TOKEN, READ_ONLY, SESSION_COOKIE
from tests.support.wait import wait_until
from tests.web.conftest import TOKEN, WHO, Cluster, bearer, serve
from tests.web.flows import nightly, payments


def cli_json(url: str, *args: str) -> Any:
    """What ``rqdag ARGS --redis URL --json`` prints, parsed."""
    result = CliRunner().invoke(main, [*args, "--redis", url, "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def read_only(cluster: Cluster) -> Iterator[httpx.Client]:
    """A client of the dashboard without a token."""
    with serve(create_app(cluster.url)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def finished_runs(cluster: Cluster) -> list[str]:
    """A run that succeeded and one that failed (a task fails after a retry, its dependent skipped)."""
    ok = cluster.submit(nightly, "api-ok")
    bad = cluster.submit(nightly, "api-bad", fail=["score_customers"], big=["build_features"])
    ok.wait(timeout=60)
    bad.wait(timeout=60)
    return ["api-ok", "api-bad"]


def cli_jsonl(url: str, *args: str) -> list[Any]:
    """What ``rqdag ARGS --redis URL --json`` prints as JSON lines, parsed."""
    result = CliRunner().invoke(main, [*args, "--redis", url, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def test_runs_list_has_the_fields_of_rqdag_runs_json(
    api: httpx.Client, cluster: Cluster, finished_runs: list[str]
) -> None:
    page = api.get("/api/runs").json()
    cli = {row["run_id"]: row for row in cli_json(cluster.url, "runs")}
    rows = {row["run_id"]: row for row in page["runs"]}
    assert set(finished_runs) <= set(rows)
    for run_id in finished_runs:
        mine, theirs = rows[run_id], cli[run_id]
        assert {k: mine[k] for k in theirs if k != "age_s"} == {
            k: v for k, v in theirs.items() if k != "age_s"
        }
        assert abs(mine["age_s"] - theirs["age_s"]) < 5
    bad = rows["api-bad"]
    assert bad["status"] == "failed"
    assert bad["counts"]["failure"] == 1 and bad["counts"]["skipped"] == 2 and bad["counts"]["success"] == 8
    assert bad["duration_s"] > 0
    assert page["total"] >= 2 and page["offset"] == 0


def test_runs_list_filters_by_status_workflow_and_id(api: httpx.Client, finished_runs: list[str]) -> None:
    failed = api.get("/api/runs", params={"status": "failed"}).json()["runs"]
    assert [r["run_id"] for r in failed] == ["api-bad"]
    assert {r["run_id"] for r in api.get("/api/runs", params={"workflow": "nightly_etl"}).json()["runs"]} >= {
        "api-ok",
        "api-bad",
    }
    assert api.get("/api/runs", params={"workflow": "nope"}).json()["runs"] == []
    found = api.get("/api/runs", params={"q": "i-ok"}).json()
    assert [r["run_id"] for r in found["runs"]] == ["api-ok"]
    assert found["filters"] == {"status": None, "workflow": None, "q": "i-ok"}
    refused = api.get("/api/runs", params={"status": "bogus"})
    assert refused.status_code == 400 and "'status' must be one of" in refused.json()["error"]
    assert api.get("/api/runs", params={"limit": 0}).status_code == 400


def test_run_document_is_rqdag_status_json_with_tasks_timeline_and_epochs(
    api: httpx.Client, cluster: Cluster, finished_runs: list[str]
) -> None:
    doc = api.get("/api/runs/api-bad").json()
    status = cli_json(cluster.url, "status", "api-bad")
    for key in ("run", "version", "results", "in_flight", "counts", "problems"):
        assert doc[key] == status[key], key
    tasks = {t["task"]: t for t in doc["tasks"]}
    assert [t["task"] for t in doc["tasks"]][:3] == [
        "extract_orders",
        "extract_customers",
        "extract_products",
    ]
    assert tasks["score_customers"]["status"] == "failure" and tasks["score_customers"]["attempt"] == 2
    assert tasks["publish_report"]["status"] == "skipped"
    assert tasks["train_model"]["depends_on"] == ["build_features"]
    assert doc["done"] == doc["total"] == 11 and doc["eta_s"] is None
    attempts = [a for a in doc["timeline"] if a["task"] == "score_customers"]
    assert [(a["attempt"], a["status"], a["outcome"]) for a in attempts] == [
        (1, "failure", "retry"),
        (2, "failure", "finished"),
    ]
    assert all(a["worker"] and a["started_at"] <= a["finished_at"] for a in doc["timeline"])
    assert not any(a["task"] == "publish_report" for a in doc["timeline"]), "a skipped task ran no attempt"
    assert doc["epochs"] == [{"epoch": 1, "started_at": doc["run"]["created_at"], "rerun": []}]
    assert doc["audit"] == []
    compact = api.get("/api/runs/api-bad", params={"results": "0"}).json()
    assert "results" not in compact and compact["tasks"] == doc["tasks"]
    missing = api.get("/api/runs/no-such-run")
    assert missing.status_code == 404 and missing.json() == {"error": "no run 'no-such-run'"}


def test_task_document_is_rqdag_inspect_json_with_attempts_and_logs(
    api: httpx.Client, cluster: Cluster, finished_runs: list[str]
) -> None:
    doc = api.get("/api/runs/api-bad/tasks/score_customers").json()
    inspected = cli_json(cluster.url, "inspect", "api-bad", "score_customers")
    assert {k: v for k, v in doc.items() if k not in ("timeline", "logs")} == inspected
    assert "ValueError: customer 3 has no score" in doc["result"]["error"]
    assert "Traceback" in doc["result"]["error"]
    assert [a["attempt"] for a in doc["timeline"]] == [1, 2]
    assert [(line["attempt"], line["stream"], line["message"]) for line in doc["logs"]] == [
        (n, stream, message)
        for n in (1, 2)
        for stream, message in (
            ("log", f"score_customers: attempt {n} starts"),
            ("stdout", "score_customers: inputs build_features"),
        )
    ], "the lines each attempt wrote, as rqdag logs --json has them"
    assert doc["logs"] == cli_jsonl(cluster.url, "logs", "api-bad", "score_customers")
    page = api.get("/runs/api-bad/tasks/score_customers").text
    assert "score_customers: attempt 2 starts" in page and 'class="log-attempt">attempt 2<' in page
    assert doc["definition"]["retry"]["attempts"] == 1
    assert api.get("/api/runs/api-bad/tasks/nope").status_code == 404


def test_large_data_downloads_whole(api: httpx.Client, finished_runs: list[str]) -> None:
    reply = api.get("/api/runs/api-bad/tasks/build_features/data")
    assert reply.status_code == 200
    assert reply.headers["content-disposition"] == 'attachment; filename="api-bad.build_features.data.json"'
    assert len(reply.json()["rows"]) == 1500
    page = api.get("/runs/api-bad/tasks/build_features").text
    assert 'id="data-truncated"' in page and "/api/runs/api-bad/tasks/build_features/data" in page
    assert "build_features: attempt 1 starts" in page, "its captured lines"


def test_workers_lists_live_workers_and_the_task_each_runs(api: httpx.Client, cluster: Cluster) -> None:
    cluster.submit(payments, "api-workers", gated=["charge_cards"])
    store = RunStore(cluster.connection)
    wait_until(lambda: "charge_cards" in store.read_state("api-workers").dispatch, 30, "charge_cards running")

    def busy() -> list[dict[str, Any]]:
        workers = api.get("/api/workers").json()["workers"]
        return [w for w in workers if w["current_task"]]

    wait_until(lambda: len(busy()) == 1, 30, "a worker shows its current task")
    worker = busy()[0]
    assert worker["current_task"] == {
        "run_id": "api-workers",
        "task": "charge_cards",
        "attempt": 1,
        "func": "tests.web.flows:step",
    }
    assert worker["queues"] == ["default"] and worker["state"] == "busy"
    assert worker["name"] == store.read_state("api-workers").dispatch["charge_cards"].worker
    assert len(api.get("/api/workers").json()["workers"]) == 2
    cluster.open_gate("api-workers", "charge_cards")
    cluster.client.run("api-workers").wait(timeout=30)


def test_actions_are_refused_when_no_token_is_configured(read_only: httpx.Client, cluster: Cluster) -> None:
    handle = cluster.submit(payments, "api-ro", gated=["load_invoices"])
    for path in ("cancel", "resume", "tasks/load_invoices/resolve"):
        reply = read_only.post(f"/api/runs/api-ro/{path}", json={}, headers=bearer())
        assert reply.status_code == 403 and reply.json() == {"error": READ_ONLY}
    assert handle.status().cancel == ""
    assert 'id="cancel-run"' not in read_only.get("/runs/api-ro").text
    cluster.open_gate("api-ro", "load_invoices")
    handle.wait(timeout=30)


def test_cancel_needs_the_token_and_is_audited(api: httpx.Client, cluster: Cluster) -> None:
    handle = cluster.submit(payments, "api-cancel", gated=["load_invoices"])
    for headers in ({}, bearer("wrong-token-wrong-token")):
        reply = api.post("/api/runs/api-cancel/cancel", json={"reason": "stop"}, headers=headers)
        assert reply.status_code == 401, reply.text
    assert api.post("/api/runs/api-cancel/cancel", headers={}).json() == {"error": NEEDS_TOKEN}
    assert handle.status().cancel == ""
    reply = api.post("/api/runs/api-cancel/cancel", json={"reason": "wrong invoices"}, headers=bearer())
    assert reply.status_code == 200
    assert reply.json() == {"run_id": "api-cancel", "cancel": "wrong invoices", "who": WHO}
    handle.wait(timeout=30)
    assert handle.status().status == "cancelled"
    [entry] = read_audit(RunStore(cluster.connection), "api-cancel")
    assert entry["kind"] == "cancel" and entry["who"] == WHO and entry["via"] == "token"
    assert entry["reason"] == "wrong invoices"
    again = api.post("/api/runs/api-cancel/cancel", headers=bearer())
    assert again.status_code == 409 and "already ended (cancelled)" in again.json()["error"]


def _csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]*)">', page)
    assert found is not None
    return found.group(1)


def test_a_browser_session_needs_its_csrf_token_and_this_origin(cluster: Cluster) -> None:
    handle = cluster.submit(payments, "api-session", gated=["load_invoices"])
    app = create_app(cluster.url, token=TOKEN)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as browser:
        origin = base
        assert browser.post("/login", data={"token": "bad"}, headers={"Origin": origin}).status_code == 401
        cross = browser.post("/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403 and SESSION_COOKIE not in browser.cookies
        signed = browser.post(
            "/login", data={"token": TOKEN, "next": "/runs/api-session"}, headers={"Origin": origin}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/runs/api-session"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        csrf = _csrf_of(browser.get("/runs/api-session").text)
        assert csrf and 'id="cancel-run"' in browser.get("/runs/api-session").text
        url = "/api/runs/api-session/cancel"
        no_csrf = browser.post(url, json={}, headers={"Origin": origin})
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]
        forged = browser.post(url, json={}, headers={"Origin": origin, "X-CSRF-Token": "0" * 64})
        assert forged.status_code == 403
        cross_site = browser.post(
            url, json={}, headers={"Origin": "http://evil.example", "X-CSRF-Token": csrf}
        )
        assert cross_site.status_code == 403 and "cross-site" in cross_site.json()["error"]
        no_origin = browser.post(url, json={}, headers={"X-CSRF-Token": csrf})
        assert no_origin.status_code == 403
        assert handle.status().cancel == ""
        proxied = {"Authorization": "Basic cHJveHk6dXNlcg=="}  # a proxy's own scheme is not the token
        ok = browser.post(
            url, json={}, headers={"Referer": f"{origin}/runs/api-session", "X-CSRF-Token": csrf, **proxied}
        )
        assert ok.status_code == 200, ok.text
        logout = browser.post("/logout", data={"csrf": csrf}, headers={"Origin": origin})
        assert logout.status_code == 303 and SESSION_COOKIE not in browser.cookies
        assert browser.post(url, json={}, headers={"Origin": origin, "X-CSRF-Token": csrf}).status_code == 401
    handle.wait(timeout=30)
    [entry] = read_audit(RunStore(cluster.connection), "api-session")
    assert entry["kind"] == "cancel" and entry["via"] == "session"


def test_resume_plans_then_starts_the_next_epoch(api: httpx.Client, cluster: Cluster) -> None:
    handle = cluster.submit(nightly, "api-resume", fail=["score_customers"])
    handle.wait(timeout=60)
    assert handle.status().status == "failed"
    plan = api.post("/api/runs/api-resume/resume", json={"plan": True}, headers=bearer()).json()
    cli_plan = cli_json(cluster.url, "resume", "api-resume", "--plan")
    assert plan == cli_plan and plan["resumed"] is False
    assert plan["rerun"] == ["score_customers", "publish_report", "notify_team"]
    assert handle.status().epoch == 1
    # the cause is fixed (the failing task no longer fails), then the run is resumed from the dashboard
    params = {"gate_dir": str(cluster.gates)}
    cluster.connection.hset(RunKeys("api-resume").meta, "params", json.dumps(params))
    reply = api.post("/api/runs/api-resume/resume", json={}, headers=bearer())
    assert reply.status_code == 200 and reply.json()["resumed"] is True
    handle.wait(timeout=60)
    assert handle.status().status == "succeeded" and handle.status().epoch == 2
    doc = api.get("/api/runs/api-resume").json()
    assert doc["epochs"][1]["epoch"] == 2 and doc["epochs"][1]["rerun"] == sorted(plan["rerun"])
    kinds = [e["kind"] for e in doc["audit"]]
    assert kinds.count("resume") == 3 and kinds[-1] == "resumed"
    assert doc["audit"][-1]["who"] == WHO and doc["audit"][-1]["epoch"] == 2
    running = cluster.submit(payments, "api-resume-open", gated=["load_invoices"])
    refused = api.post("/api/runs/api-resume-open/resume", json={}, headers=bearer())
    assert refused.status_code == 409 and "a coordinator is still driving it" in refused.json()["error"]
    cluster.open_gate("api-resume-open", "load_invoices")
    running.wait(timeout=30)


def test_an_in_doubt_task_is_resolved_from_the_dashboard(api: httpx.Client, cluster: Cluster) -> None:
    spare = cluster.start_worker("worker-3")
    handle = cluster.submit(payments, "api-doubt", gated=["charge_cards"])
    store = RunStore(cluster.connection)
    wait_until(
        lambda: (
            store.read_state("api-doubt").dispatch.get("charge_cards") is not None
            and store.read_state("api-doubt").dispatch["charge_cards"].state == "running"
        ),
        30,
        "charge_cards running",
    )
    victim = cluster.workers[str(store.read_state("api-doubt").dispatch["charge_cards"].worker)]
    victim.send_signal(signal.SIGTERM)  # it hands the at-most-once task back: its outcome is unknown
    victim.wait(timeout=15)
    wait_until(lambda: handle.status().status == "blocked", 30, "the run blocked on the in-doubt task")
    doc = api.get("/api/runs/api-doubt/tasks/charge_cards").json()
    assert doc["result"]["in_doubt"] is True
    bad = api.post(
        "/api/runs/api-doubt/tasks/charge_cards/resolve", json={"status": "maybe"}, headers=bearer()
    )
    assert bad.status_code == 400 and "'status' must be success or failure" in bad.json()["error"]
    reply = api.post(
        "/api/runs/api-doubt/tasks/charge_cards/resolve",
        json={"status": "success", "data": {"charged": True}, "reason": "the provider shows the charge"},
        headers=bearer(),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["data"] == {"charged": True}
    handle.wait(timeout=30)
    assert handle.status().status == "succeeded"
    [entry] = read_audit(store, "api-doubt", "charge_cards")
    assert entry["kind"] == "resolve" and entry["who"] == WHO
    assert entry["previous"]["in_doubt"] is True and entry["reason"] == "the provider shows the charge"
    assert spare.poll() is None or victim is spare


def test_the_event_stream_sends_an_update_as_each_task_finishes(cluster: Cluster) -> None:
    handle = cluster.submit(payments, "api-sse", gated=["charge_cards"])
    seen: list[dict[str, str]] = []
    with serve(create_app(cluster.url)) as base, httpx.Client(base_url=base, timeout=30) as http:
        with http.stream("GET", "/api/runs/api-sse/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "update":
                    doc = json.loads(line.removeprefix("data: "))
                    statuses = {t["task"]: t["status"] for t in doc["tasks"]}
                    seen.append(statuses)
                    if statuses["charge_cards"] == "running":
                        cluster.open_gate("api-sse", "charge_cards")
                    if doc["run"]["status"] == "succeeded":
                        break
        assert http.get("/api/runs/no-such-run/events").status_code == 404
    handle.wait(timeout=5)
    assert any(s["charge_cards"] == "running" and s["send_receipts"] == "pending" for s in seen)
    assert seen[-1] == dict.fromkeys(("load_invoices", "charge_cards", "send_receipts"), "success")


def test_the_event_stream_says_when_its_run_is_deleted(cluster: Cluster) -> None:
    cluster.submit(payments, "api-gone", gated=["load_invoices"])
    events = []
    with (
        serve(create_app(cluster.url)) as base,
        httpx.Client(base_url=base, timeout=30) as http,
        http.stream("GET", "/api/runs/api-gone/events") as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
                if events == ["update"]:
                    cluster.open_gate("api-gone", "load_invoices")
                    RunStore(cluster.connection).delete_run("api-gone")
            elif line.startswith("data: ") and events[-1] == "gone":
                gone = json.loads(line.removeprefix("data: "))
                assert gone == {"run_id": "api-gone", "error": "no run 'api-gone'"}
                break
    assert events[0] == "update" and events[-1] == "gone"
