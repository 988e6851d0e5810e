"""The Lua scripts of rqdag's atomic steps, loaded once from ``lua/*.lua``.

Each script documents its KEYS, ARGV and return value in its header.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script

SCRIPT_NAMES = (
    "acquire_lease",
    "renew_lease",
    "release_lease",
    "start_task",
    "finish_task",
    "heartbeat",
    "record_results",
    "set_run_status",
    "void_attempt",
    "hand_back",
    "read_progress",
    "prune_run",
)

# Events streams are trimmed to about this many entries (MAXLEN ~).
EVENTS_MAXLEN = 10_000


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua`` (read once per process)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no rqdag script named {name!r}")
    return resources.files("rqdag.shared.store").joinpath("lua", f"{name}.lua").read_text("utf-8")


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one Redis client (EVALSHA, reloaded on NOSCRIPT)."""

    acquire_lease: Script
    renew_lease: Script
    release_lease: Script
    start_task: Script
    finish_task: Script
    heartbeat: Script
    record_results: Script
    set_run_status: Script
    void_attempt: Script
    hand_back: Script
    read_progress: Script
    prune_run: Script

    @classmethod
    def register(cls, client: redis.Redis) -> Scripts:
        """Register every script on ``client``."""
        return cls(**{name: client.register_script(script_source(name)) for name in SCRIPT_NAMES})
