"""``GET /api/runs/{run_id}/events``: a run's live view as server-sent events.

The first ``update`` event is the run's document at once; another follows each
time the run's event stream moves (read with ``XREAD BLOCK`` in one-second
slices on the asyncio client, so a watcher holds no thread). Updates are at
least ``MIN_GAP_S`` apart and further apart when the document is costly to
build (``COST_FACTOR`` times its build time), so a large run cannot swamp
Redis. A comment line keeps idle connections open through proxies. A stream
ends when the server shuts down (the browser reconnects to the next one) or the
run is deleted (a ``gone`` event; checked each quiet second); while Redis does not answer it sends a
``problem`` event each second and goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from rqdag.cli.common import one_line
from rqdag.errors import RunNotFoundError
from rqdag.shared.store.keys import RunKeys
from rqdag.web.run_view import run_document
from rqdag.web.state import Dashboard, HttpProblem, dashboard

BLOCK_MS = 1000
MIN_GAP_S = 0.25
MAX_GAP_S = 5.0
COST_FACTOR = 3.0
KEEPALIVE_S = 15.0
MAX_STREAMS = 100
RETRY_S = 1.0


def sse_message(event: str, data: Any) -> str:
    """One server-sent event: its name and its data as one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


async def _document(board: Dashboard, run_id: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    doc = await run_in_threadpool(run_document, board.store, board.cache, run_id, with_results=False)
    return doc, time.monotonic() - started


async def _updates(
    request: Request, board: Dashboard, run_id: str, first: dict[str, Any]
) -> AsyncIterator[str]:
    keys = RunKeys(run_id)
    last_id: Any = first["last_event_id"]
    board.streams += 1
    try:
        yield sse_message("update", first)
        quiet_since = time.monotonic()
        while not board.closing.is_set() and not await request.is_disconnected():
            try:
                reply: Any = await board.async_client.xread(
                    {keys.events: last_id}, count=1000, block=BLOCK_MS
                )
                if not reply:
                    if not await board.async_client.exists(keys.meta):
                        raise RunNotFoundError(f"no run '{run_id}'")
                    if time.monotonic() - quiet_since > KEEPALIVE_S:
                        quiet_since = time.monotonic()
                        yield ": keep-alive\n\n"
                    continue
                doc, cost = await _document(board, run_id)
            except RunNotFoundError as exc:  # deleted meanwhile (retention, or by hand)
                yield sse_message("gone", {"run_id": run_id, "error": str(exc)})
                return
            except redis.RedisError as exc:  # a Redis restart: keep the stream, try again
                yield sse_message("problem", {"error": f"Redis did not answer: {one_line(str(exc))}"})
                await anyio.sleep(RETRY_S)
                continue
            last_id = doc["last_event_id"]
            quiet_since = time.monotonic()
            yield sse_message("update", doc)
            await anyio.sleep(min(max(cost * COST_FACTOR, MIN_GAP_S), MAX_GAP_S))
    finally:
        board.streams -= 1


async def run_events(request: Request) -> Response:
    """Stream the run's updates until the client goes away."""
    board = dashboard(request)
    if board.streams >= MAX_STREAMS:
        raise HttpProblem(503, f"too many live views open ({MAX_STREAMS}); try again later")
    run_id = request.path_params["run_id"]
    first, _ = await _document(board, run_id)  # a missing run is a 404 before the stream opens
    return StreamingResponse(
        _updates(request, board, run_id, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
