"""The HTTP server of ``rqdag dashboard``: uvicorn, ending the live streams first on shutdown.

An open event stream would otherwise hold uvicorn's graceful shutdown (Ctrl-C,
SIGTERM) until the browser tab closes.
"""

from __future__ import annotations

import socket

import uvicorn
from starlette.applications import Starlette

from rqdag.web.state import Dashboard

GRACEFUL_SHUTDOWN_S = 5


class DashboardServer(uvicorn.Server):
    """uvicorn's server for the dashboard app."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        super().__init__(config)
        self.dashboard: Dashboard = app.state.dashboard

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the event streams, then shut down as uvicorn does."""
        self.dashboard.closing.set()
        await super().shutdown(sockets)
