"""The runs list with 10,000 runs in a real Redis: pages by rank, filters in bounded scans, fast."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.runs import RunStore
from rqdag.web.app import create_app
from rqdag.web.listing import SCAN_BUDGET
from tests.web.conftest import serve
from tests.web.flows import nightly, payments

RUNS = 10_000
FAST_S = 1.0  # per request, on a loaded 2-core machine; a page takes a few milliseconds


@pytest.fixture(scope="module")
def many_runs(redis_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """10,000 runs (every 1,000th of workflow nightly_etl, every 100th failed), newest last."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
        store = RunStore(client)
        for i in range(RUNS):
            store.create_run(nightly if i % 1000 == 0 else payments, run_id=f"bulk-{i:05d}")
        with client.pipeline(transaction=False) as pipe:
            for i in range(0, RUNS, 100):
                pipe.hset(RunKeys(f"bulk-{i:05d}").meta, "status", "failed")
            pipe.execute()
    yield redis_server.url


@pytest.fixture(scope="module")
def http(many_runs: str) -> Iterator[httpx.Client]:
    """A client of a read-only dashboard on those runs."""
    with serve(create_app(many_runs)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


def timed(http: httpx.Client, path: str, **params: object) -> tuple[dict, float]:  # type: ignore[type-arg]
    """The JSON reply of ``GET path`` and the seconds it took."""
    started = time.perf_counter()
    reply = http.get(path, params=params)
    took = time.perf_counter() - started
    assert reply.status_code == 200, reply.text
    return reply.json(), took


def ids(page: dict) -> list[str]:  # type: ignore[type-arg]
    """The run ids of a page, in order."""
    return [r["run_id"] for r in page["runs"]]


def test_pages_are_read_by_rank_newest_first(http: httpx.Client) -> None:
    first, took_first = timed(http, "/api/runs", limit=50)
    assert ids(first) == [f"bulk-{i:05d}" for i in range(RUNS - 1, RUNS - 51, -1)]
    assert first["total"] == RUNS and first["next_offset"] == 50 and first["scanned"] == 50
    last, took_last = timed(http, "/api/runs", offset=RUNS - 20, limit=50)
    assert ids(last) == [f"bulk-{i:05d}" for i in range(19, -1, -1)]
    assert last["next_offset"] is None
    assert max(took_first, took_last) < FAST_S, (took_first, took_last)
    started = time.perf_counter()
    page = http.get("/", params={"offset": RUNS - 50})
    assert page.status_code == 200 and "bulk-00049" in page.text
    assert "Runs 9,951\u201310,000 of 10,000" in page.text
    assert time.perf_counter() - started < FAST_S


def test_filters_scan_a_bounded_stretch_and_say_where_to_go_on(http: httpx.Client) -> None:
    failed, took = timed(http, "/api/runs", status="failed", limit=20)
    assert ids(failed) == [f"bulk-{i:05d}" for i in range(9900, 7900, -100)]
    assert failed["next_offset"] == RUNS - 8000 and took < FAST_S
    nightly_runs, took = timed(http, "/api/runs", workflow="nightly_etl", limit=50)
    assert ids(nightly_runs) == [f"bulk-{i:05d}" for i in range(9000, RUNS - SCAN_BUDGET - 1, -1000)]
    assert nightly_runs["scanned"] == SCAN_BUDGET and nightly_runs["next_offset"] == SCAN_BUDGET
    assert took < FAST_S
    rest, took = timed(
        http, "/api/runs", workflow="nightly_etl", limit=50, offset=nightly_runs["next_offset"]
    )
    assert ids(rest) == [f"bulk-{i:05d}" for i in range(4000, -1, -1000)]
    assert rest["next_offset"] is None and took < FAST_S
    found, took = timed(http, "/api/runs", q="bulk-0004", limit=50)
    assert ids(found) == [f"bulk-{i:05d}" for i in range(49, 39, -1)] and took < FAST_S
    exact = http.get("/", params={"q": "bulk-01234"})
    assert exact.status_code == 303 and exact.headers["location"] == "/runs/bulk-01234"
