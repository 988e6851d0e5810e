"""What every request handler shares: the Redis clients, the definition cache, the auth."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import quote

import redis
import redis.asyncio
from starlette.requests import Request

from rqdag.shared.store.runs import RunStore
from rqdag.web.auth import Auth
from rqdag.web.run_view import DefinitionCache


class HttpProblem(Exception):
    """A request that cannot be answered as asked: its HTTP status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Dashboard:
    """The dashboard's shared parts (one per app)."""

    client: redis.Redis
    async_client: redis.asyncio.Redis
    auth: Auth
    redis_label: str  # the Redis URL, password hidden
    cache: DefinitionCache = field(default_factory=DefinitionCache)
    streams: int = 0  # event streams open now
    closing: threading.Event = field(default_factory=threading.Event)  # set when the server shuts down

    @property
    def store(self) -> RunStore:
        """A RunStore over the shared client."""
        return RunStore(self.client)


def dashboard(request: Request) -> Dashboard:
    """The dashboard that serves ``request``."""
    found: Dashboard = request.app.state.dashboard
    return found


def who(request: Request) -> str:
    """``dashboard@<client address>``: the actor an action records in the audit stream."""
    return f"dashboard@{request.client.host if request.client else 'unknown'}"


def run_url(run_id: str) -> str:
    """The page of a run."""
    return f"/runs/{quote(run_id, safe='')}"


def task_url(run_id: str, task: str) -> str:
    """The page of one task of a run."""
    return f"{run_url(run_id)}/tasks/{quote(task, safe='')}"
