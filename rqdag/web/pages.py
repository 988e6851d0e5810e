"""The HTML pages: runs, a run, a task, workers, and signing in and out.

Pages are rendered from the same documents as the JSON API. A run's page then
follows the run through ``/api/runs/{run_id}/events``; the runs and workers
pages refresh their table from ``?fragment=rows``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from rqdag.cli.common import RUN_STATUSES
from rqdag.shared.store.keys import RUN_ID_PATTERN
from rqdag.web import formatting
from rqdag.web.api import parse_listing
from rqdag.web.auth import CSRF_FIELD, SESSION_COOKIE, SESSION_TTL_S, Refused, same_origin
from rqdag.web.layout import layout
from rqdag.web.listing import list_page
from rqdag.web.mapped import drawn_rows
from rqdag.web.run_view import run_document
from rqdag.web.state import dashboard, run_url, task_url
from rqdag.web.task_view import LOG_LINES_SHOWN, pretty_data, task_document
from rqdag.web.workers import list_workers

MAX_DRAWN_TASKS = 400
STATUS_ORDER = (
    "success",
    "failure",
    "running",
    "queued",
    "retry_wait",
    "handed_back",
    "lost",
    "skipped",
    "cancelled",
    "pending",
)

_env = Environment(loader=PackageLoader("rqdag.web", "templates"), autoescape=select_autoescape(default=True))
formatting.register(_env)
_env.globals.update(run_url=run_url, task_url=task_url, STATUS_ORDER=STATUS_ORDER, RUN_STATUSES=RUN_STATUSES)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The template ``name`` with the header's facts (Redis, sign-in state, CSRF token)."""
    board = dashboard(request)
    session = board.auth.session(request)
    html = _env.get_template(name).render(
        request=request,
        redis_label=board.redis_label,
        auth_enabled=board.auth.enabled,
        signed_in=session is not None,
        csrf=session.csrf if session else "",
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def runs_page(request: Request) -> Response:
    """``/``: the runs list, filtered and paged."""
    board = dashboard(request)
    filt, offset, limit = parse_listing(request.query_params)
    query = filt.query or ""
    exact = RUN_ID_PATTERN.match(query) and not (filt.status or filt.workflow)
    if exact and request.query_params.get("fragment") is None and board.store.exists(query):
        return RedirectResponse(run_url(query), status_code=303)
    page = list_page(board.store, filt, offset, limit)
    name = "runs_rows.html" if request.query_params.get("fragment") == "rows" else "runs.html"
    return render(request, name, page=page, filt=filt, nav="runs")


def run_page(request: Request) -> Response:
    """``/runs/{run_id}``: the DAG live, progress, timeline, params, epochs, audit."""
    board = dashboard(request)
    run_id = request.path_params["run_id"]
    doc = run_document(board.store, board.cache, run_id, with_results=False)
    drawing = None
    drawn = drawn_rows(doc["tasks"], doc["mapped"])
    if len(drawn) <= MAX_DRAWN_TASKS:
        deps = {t["task"]: t["depends_on"] for t in drawn}
        drawing = layout(deps, [t["task"] for t in drawn])
    by_name = {t["task"]: t for t in doc["tasks"]}
    return render(
        request,
        "run.html",
        doc=doc,
        run=doc["run"],
        drawing=drawing,
        by_name=by_name,
        nav="runs",
        max_drawn=MAX_DRAWN_TASKS,
    )


def task_page(request: Request) -> Response:
    """``/runs/{run_id}/tasks/{task}``: result, data, error, attempts, definition, logs."""
    run_id, task = request.path_params["run_id"], request.path_params["task"]
    doc = task_document(dashboard(request).store, run_id, task)
    result = doc["result"]
    data = pretty_data(result["data"]) if result is not None and result.get("data") is not None else None
    return render(
        request, "task.html", doc=doc, result=result, data=data, nav="runs", logs_shown=LOG_LINES_SHOWN
    )


def workers_page(request: Request) -> Response:
    """``/workers``: the live workers with their queues and current task."""
    workers = list_workers(dashboard(request).client)
    name = "workers_rows.html" if request.query_params.get("fragment") == "rows" else "workers.html"
    return render(request, name, workers=workers, nav="workers")


def login_form(request: Request) -> Response:
    """``GET /login``: the form that takes the dashboard token."""
    board = dashboard(request)
    if not board.auth.enabled:
        return render(
            request, "login.html", status=404, error="this dashboard is read-only: there is no token"
        )
    return render(request, "login.html", error=None, next=_next(request.query_params.get("next")))


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body())[: 64 * 1024].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(raw).items()}


def _next(target: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


async def login(request: Request) -> Response:
    """``POST /login``: a right token from a page of this dashboard gets a session cookie."""
    board = dashboard(request)
    form = await _form(request)
    target = _next(form.get("next"))
    if not board.auth.enabled:
        raise Refused(403, "this dashboard is read-only: there is nothing to sign in to")
    if not same_origin(request):
        raise Refused(403, "cross-site sign-in refused")
    if not board.auth.token_matches(form.get("token", "")):
        return render(
            request, "login.html", status=401, error="That is not the dashboard's token.", next=target
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        board.auth.new_cookie(),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    """``POST /logout``: forget the session cookie (with the session's CSRF token)."""
    board = dashboard(request)
    session = board.auth.session(request)
    form = await _form(request)
    if session is not None:
        board.auth.check_form_post(request, session, form.get(CSRF_FIELD))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


ROUTES = [
    Route("/", runs_page, methods=["GET"]),
    Route("/runs/{run_id}/tasks/{task:path}", task_page, methods=["GET"]),
    Route("/runs/{run_id}", run_page, methods=["GET"]),
    Route("/workers", workers_page, methods=["GET"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
