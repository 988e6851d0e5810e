"""What code the workers run: the code identity of every task function, by import path.

A worker publishes the identity of each function it may run when it starts
(the last worker to start with a function sets it). A resume without a new
workflow compares these with the identities stored with the run, so that a
task whose code was changed and deployed runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from rqdag.shared.model.code import code_identity
from rqdag.shared.store import keys


def publish_code(client: redis.Redis, functions: Mapping[str, Callable[..., Any]]) -> None:
    """Record the code identity of each function (by import path) that has Python code."""
    identities = {path: code for path, func in functions.items() if (code := code_identity(func))}
    if identities:
        client.hset(keys.CODE, mapping=identities)  # type: ignore[arg-type]


def published_code(client: redis.Redis, paths: Iterable[str]) -> dict[str, str]:
    """The identity the workers published for each of ``paths`` (paths without one are left out)."""
    wanted = sorted(set(paths))
    if not wanted:
        return {}
    found = client.hmget(keys.CODE, wanted)
    return {
        path: value.decode() if isinstance(value, bytes) else str(value)
        for path, value in zip(wanted, found, strict=True)
        if value is not None
    }
