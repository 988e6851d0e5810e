"""The JSON API behind the pages (documented in docs/dashboard.md).

Reads are open; actions (``POST``) pass :meth:`Auth.authorize` first. Field
names are those of the CLI's ``--json`` documents (docs/json.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rqdag.cli.common import RUN_STATUSES
from rqdag.web import actions
from rqdag.web.listing import MAX_LIMIT, RunFilter, list_page
from rqdag.web.run_view import run_document
from rqdag.web.sse import run_events
from rqdag.web.state import HttpProblem, dashboard, who
from rqdag.web.task_view import task_document
from rqdag.web.workers import list_workers

MAX_BODY_BYTES = 1024 * 1024
MAX_TEXT = 200


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpProblem(400, f"'{name}' must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise HttpProblem(400, f"'{name}' must be between {low} and {high}, got {value}")
    return value


def parse_listing(params: QueryParams) -> tuple[RunFilter, int, int]:
    """The filter, offset and limit a runs list request asks for (400 when malformed)."""
    status = params.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        raise HttpProblem(400, f"'status' must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
    workflow = (params.get("workflow") or "").strip() or None
    query = (params.get("q") or "").strip() or None
    for name, value in (("workflow", workflow), ("q", query)):
        if value is not None and len(value) > MAX_TEXT:
            raise HttpProblem(400, f"'{name}' is longer than {MAX_TEXT} characters")
    offset = _int(params, "offset", 0, 0, 10**9)
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    return RunFilter(status, workflow, query), offset, limit


def get_runs(request: Request) -> Response:
    """``GET /api/runs``: one page of runs, newest first."""
    filt, offset, limit = parse_listing(request.query_params)
    return JSONResponse(list_page(dashboard(request).store, filt, offset, limit).to_dict())


def get_run(request: Request) -> Response:
    """``GET /api/runs/{run_id}``: the run with its tasks, statuses, timeline, epochs and audit."""
    board = dashboard(request)
    with_results = request.query_params.get("results", "1") not in ("0", "false", "no")
    doc = run_document(board.store, board.cache, request.path_params["run_id"], with_results=with_results)
    return JSONResponse(doc)


def get_task(request: Request) -> Response:
    """``GET /api/runs/{run_id}/tasks/{task}``: the ``rqdag inspect --json`` document, and more."""
    doc = task_document(dashboard(request).store, request.path_params["run_id"], request.path_params["task"])
    return JSONResponse(doc)


def get_task_data(request: Request) -> Response:
    """``GET /api/runs/{run_id}/tasks/{task}/data``: the task's data as a JSON file."""
    run_id, task = request.path_params["run_id"], request.path_params["task"]
    doc = task_document(dashboard(request).store, run_id, task)
    if doc["result"] is None:
        raise HttpProblem(404, f"run '{run_id}': task '{task}' has no result yet")
    body = json.dumps(doc["result"]["data"], indent=2, sort_keys=True, ensure_ascii=False)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{run_id}.{task}")
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{safe}.data.json"'},
    )


def get_workers(request: Request) -> Response:
    """``GET /api/workers``: the live RQ workers and the rqdag task each one runs."""
    return JSONResponse({"workers": list_workers(dashboard(request).client)})


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HttpProblem(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise HttpProblem(400, f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HttpProblem(400, "the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise HttpProblem(400, f"'{name}' must be a string")
    return value or None


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise HttpProblem(400, f"'{name}' must be true or false")
    return value


async def _act(
    request: Request,
    action: Callable[..., dict[str, Any]],
    fields: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    on_task: bool = False,
    audited_here: bool = True,
) -> Response:
    """What every action shares: authorize, read the body into ``fields(body)``, then run
    ``action(store, run_id[, task], who=..., [via=...,] **fields)`` off the event loop.

    ``audited_here``: the action writes its own audit entry and is told the ``via`` that
    authorized it; otherwise the store call it makes writes the entry itself.
    """
    board = dashboard(request)
    via = board.auth.authorize(request)
    kwargs = fields(await _body(request))
    if audited_here:
        kwargs["via"] = via
    target = [request.path_params["run_id"]]
    if on_task:
        target.append(request.path_params["task"])
    out = await run_in_threadpool(action, board.store, *target, who=who(request), **kwargs)
    return JSONResponse(out)


def _resume_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {"plan": _flag(body, "plan"), "keep_changed": _flag(body, "keep_changed")}


def _outcome_fields(body: dict[str, Any], default: str | None) -> dict[str, Any]:
    """A resolve's or a signal's ``status`` (``default`` when not given), ``data`` and ``reason``."""
    status = _text(body, "status") or default
    if status not in actions.RESOLVE_STATUSES:
        raise HttpProblem(400, f"'status' must be {' or '.join(actions.RESOLVE_STATUSES)}, got {status!r}")
    return {"status": status, "data": body.get("data"), "reason": _text(body, "reason")}


async def post_cancel(request: Request) -> Response:
    """``POST /api/runs/{run_id}/cancel`` ``{"reason"}``: as ``rqdag cancel``."""
    return await _act(request, actions.cancel, lambda body: {"reason": _text(body, "reason")})


async def post_resume(request: Request) -> Response:
    """``POST /api/runs/{run_id}/resume`` ``{"plan", "keep_changed"}``: as ``rqdag resume``."""
    return await _act(request, actions.resume, _resume_fields)


async def post_rerun(request: Request) -> Response:
    """``POST /api/runs/{run_id}/tasks/{task}/rerun`` ``{"plan", "keep_changed"}``.

    As ``rqdag resume RUN --rerun TASK``: the task and its downstream run again in a new epoch.
    """
    rerun = [request.path_params["task"]]
    return await _act(request, actions.resume, lambda body: {**_resume_fields(body), "rerun": rerun})


async def post_resolve(request: Request) -> Response:
    """``POST /api/runs/{run_id}/tasks/{task}/resolve`` ``{"status", "data", "reason"}``.

    As ``rqdag resolve``: ``resolve_task`` writes the audit entry itself.
    """
    return await _act(
        request, actions.resolve, lambda body: _outcome_fields(body, None), on_task=True, audited_here=False
    )


async def post_signal(request: Request) -> Response:
    """``POST /api/runs/{run_id}/tasks/{task}/signal`` ``{"status", "data", "reason"}``.

    As ``rqdag signal``: ``signal_task`` writes the audit entry itself.
    """
    return await _act(
        request,
        actions.signal,
        lambda body: _outcome_fields(body, "success"),
        on_task=True,
        audited_here=False,
    )


ROUTES = [
    Route("/api/runs", get_runs, methods=["GET"]),
    Route("/api/runs/{run_id}/events", run_events, methods=["GET"]),
    Route("/api/runs/{run_id}/cancel", post_cancel, methods=["POST"]),
    Route("/api/runs/{run_id}/resume", post_resume, methods=["POST"]),
    Route("/api/runs/{run_id}/tasks/{task:path}/rerun", post_rerun, methods=["POST"]),
    Route("/api/runs/{run_id}/tasks/{task:path}/resolve", post_resolve, methods=["POST"]),
    Route("/api/runs/{run_id}/tasks/{task:path}/signal", post_signal, methods=["POST"]),
    Route("/api/runs/{run_id}/tasks/{task:path}/data", get_task_data, methods=["GET"]),
    Route("/api/runs/{run_id}/tasks/{task:path}", get_task, methods=["GET"]),
    Route("/api/runs/{run_id}", get_run, methods=["GET"]),
    Route("/api/workers", get_workers, methods=["GET"]),
]
