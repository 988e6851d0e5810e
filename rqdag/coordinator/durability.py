"""The coordinator's start-up check of the Redis it keeps every run in: can it lose them?"""

from __future__ import annotations

import logging

import redis

from rqdag.shared.store.records import text

log = logging.getLogger("rqdag.coordinator")


def check_redis_durability(client: redis.Redis) -> list[str]:
    """Warn (and return the warnings) when this Redis can lose runs."""
    try:
        config: dict[str, str] = {
            text(k): text(v)
            for k, v in {
                **client.config_get("appendonly"),
                **client.config_get("save"),
                **client.config_get("maxmemory-policy"),
            }.items()
        }
    except redis.ResponseError as exc:  # CONFIG is often disabled on managed Redis
        log.info("cannot read the Redis configuration (%s); check persistence yourself", exc)
        return []
    warnings = []
    if config.get("appendonly") != "yes" and not config.get("save"):
        warnings.append(
            "Redis persistence is off (appendonly no, no save points): a Redis restart loses every run"
        )
    elif config.get("appendonly") != "yes":
        warnings.append(
            "Redis has no append-only file (only RDB snapshots): a crash loses what changed since"
            " the last snapshot"
        )
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        warnings.append(f"Redis eviction policy is {policy}: evicted keys would lose runs; use noeviction")
    for warning in warnings:
        log.warning("%s", warning)
    return warnings
