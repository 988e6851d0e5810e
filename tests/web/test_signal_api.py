"""The dashboard's signal action: a pending wait of a run, through the code of ``rqdag signal``."""

from __future__ import annotations

import httpx

from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from tests.support.wait import wait_until
from tests.web.conftest import WHO, Cluster, bearer
from tests.web.flows import approval


def test_a_pending_wait_is_signalled_from_the_run_page(api: httpx.Client, cluster: Cluster) -> None:
    handle = cluster.submit(approval, "api-wait")
    doc = api.get("/api/runs/api-wait").json()
    assert doc["waits"] == ["approval"]
    page = api.get("/runs/api-wait", headers=bearer())
    assert page.status_code == 200 and "Waiting for a signal" in page.text
    refused = api.post("/api/runs/api-wait/tasks/approval/signal", json={"data": 1})
    assert refused.status_code in (401, 403)  # no token, no signal
    wrong = api.post("/api/runs/api-wait/tasks/ship/signal", json={}, headers=bearer())
    assert wrong.status_code == 409 and "is not a wait" in wrong.json()["error"]
    reply = api.post(
        "/api/runs/api-wait/tasks/approval/signal", json={"data": {"by": "ops"}}, headers=bearer()
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["signal"]["data"] == {"by": "ops"}
    results = handle.wait(timeout=30)
    assert results["approval"].data == {"by": "ops"}
    assert handle.status().status == "succeeded"
    [entry] = [e for e in read_audit(RunStore(cluster.connection), "api-wait") if e["kind"] == "signal"]
    assert entry["who"] == WHO
    wait_until(lambda: api.get("/api/runs/api-wait").json()["waits"] == [], 10, "no pending wait")
    late = api.post("/api/runs/api-wait/tasks/approval/signal", json={}, headers=bearer())
    assert late.status_code == 409 and "has finished already" in late.json()["error"]
