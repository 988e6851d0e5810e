"""The dashboard's ASGI app: routes, static files, error pages and security headers.

``create_app(redis_url, token=...)`` returns a Starlette app; ``rqdag dashboard``
serves it with uvicorn. Every asset is package data (no CDN): the app works
with no internet access.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rqdag.cli.common import one_line, redact
from rqdag.errors import DecodeError, RqdagError, RunNotFoundError
from rqdag.shared.connect import connect
from rqdag.web import api, pages
from rqdag.web.auth import Auth, Refused
from rqdag.web.state import Dashboard, HttpProblem

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response (scripts and styles only from here)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _problem(request: Request, status: int, reason: str) -> Response:
    """A JSON error for the API, an error page for a browser."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": reason}, status_code=status)
    return pages.render(request, "error.html", status=status, status_code=status, reason=reason)


async def _on_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused | HttpProblem)
    return _problem(request, exc.status, exc.reason)


async def _on_rqdag_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RunNotFoundError):
        status = 404
    elif isinstance(exc, DecodeError):
        status = 500
    else:  # an action that does not apply now, or a read of a task that is not there
        status = 409 if request.method == "POST" else 404
    return _problem(request, status, one_line(str(exc)))


async def _on_redis_error(request: Request, exc: Exception) -> Response:
    label = dashboard_label(request)
    return _problem(request, 503, f"Redis at {label} did not answer: {one_line(str(exc))}")


def dashboard_label(request: Request) -> str:
    """The Redis URL the app reads, password hidden."""
    board: Dashboard = request.app.state.dashboard
    return board.redis_label


def create_app(redis_url: str, *, token: str | None = None) -> Starlette:
    """The dashboard app on the Redis at ``redis_url``; actions need ``token`` (none: read-only)."""
    client = connect(redis_url)
    async_client = redis.asyncio.Redis.from_url(
        redis_url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30
    )
    board = Dashboard(client, async_client, Auth(token), redact(redis_url))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await async_client.aclose()
            client.close()

    app = Starlette(
        routes=[
            *api.ROUTES,
            *pages.ROUTES,
            Mount("/static", StaticFiles(packages=[("rqdag.web", "static")]), name="static"),
        ],
        exception_handlers={
            Refused: _on_refused,
            HttpProblem: _on_refused,
            RqdagError: _on_rqdag_error,
            redis.RedisError: _on_redis_error,
        },
        lifespan=lifespan,
    )
    app.state.dashboard = board
    app.add_middleware(SecurityHeaders)
    return app
