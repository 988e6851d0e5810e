"""The worker registry: what each live rqdag worker is, can run and is doing, kept in Redis.

Every worker writes its own entry (:class:`WorkerRegistration`) when it starts,
refreshes it on every beat of its registry heartbeat and removes it when it
stops. Every key it writes carries a TTL of the worker's heartbeat limit, so a
worker that dies (SIGKILL, a lost host) drops out when that limit passes: a
reader trusts only the keys that Redis still holds, never a clock of its own.

- ``rqdag:workers`` (sorted set): worker name -> when its registration lapses
  (an index; entries whose hash is gone are skipped, and pruned by the writers);
- ``rqdag:worker:NAME`` (hash): ``info`` (JSON, see :class:`WorkerInfo`),
  ``current`` (JSON of the task it runs, or empty) and ``heartbeat_at``;
- ``rqdag:profile:PROFILE`` (string): the JSON list of task functions of the
  workers with that function set, stored once for all of them.

Readers: :func:`live_workers` (``rqdag workers``, the dashboard) and
:func:`read_fleet` (the coordinator's routing, which needs only queues and
function sets).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from rqdag.errors import DecodeError
from rqdag.shared.model.codec import dumps, loads
from rqdag.shared.store.keys import WORKERS, profile_key, worker_key
from rqdag.shared.store.records import text

PRUNE_MARGIN_S = 300.0  # index entries this long past their lapse are pruned (clock skew between hosts)


def profile_of(functions: Iterable[str]) -> str:
    """A short, stable name for a set of task functions (workers with equal sets share it)."""
    body = "\n".join(sorted(set(functions))).encode()
    return hashlib.sha1(body, usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True)
class CurrentTask:
    """The attempt a worker runs now."""

    run_id: str
    task: str
    attempt: int
    started_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form: run_id, task, attempt, started_at."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class WorkerInfo:
    """One live worker, as ``rqdag workers --json`` shows it (``to_dict`` has the same fields)."""

    name: str
    host: str
    pid: int
    queues: tuple[str, ...]  # the queues it was told to serve (tasks' ``queue``)
    rq_queues: tuple[str, ...]  # the RQ queues it listens to: one capability queue per queue
    worker_class: str
    modules: tuple[str, ...]
    profile: str
    rqdag_version: str
    python_version: str
    started_at: float
    heartbeat_limit_s: float
    functions: tuple[str, ...] = ()
    heartbeat_at: float | None = None
    current: CurrentTask | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see docs/json.md, ``rqdag workers``)."""
        body = {k: v for k, v in self.__dict__.items() if k != "current"}
        body.update(queues=list(self.queues), rq_queues=list(self.rq_queues), modules=list(self.modules))
        body["functions"] = list(self.functions)
        body["current"] = None if self.current is None else self.current.to_dict()
        return body

    def static_json(self) -> bytes:
        """The ``info`` field: every field but the functions and the moving parts."""
        body = self.to_dict()
        for moving in ("functions", "heartbeat_at", "current"):
            body.pop(moving)
        return dumps(body, what=f"worker {self.name}: info")


class WorkerRegistration:
    """The writer of one worker's registry entry (these are not a run's keys)."""

    def __init__(self, client: redis.Redis, info: WorkerInfo) -> None:
        self.client = client
        self.info = info
        self._key = worker_key(info.name)
        self._info_json = info.static_json()
        self._functions_json = dumps(list(info.functions), what=f"worker {info.name}: functions")

    def publish(self, current: CurrentTask | None = None, now: float | None = None) -> None:
        """Write (or refresh) the entry, with the task it runs now; one round trip."""
        now = time.time() if now is None else now
        ttl_ms = max(math.ceil(self.info.heartbeat_limit_s * 1000), 1)
        current_json = b"" if current is None else dumps(current.to_dict(), what="current task")
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key,
                mapping={"info": self._info_json, "current": current_json, "heartbeat_at": repr(now)},
            )
            pipe.pexpire(self._key, ttl_ms)
            pipe.set(profile_key(self.info.profile), self._functions_json, px=ttl_ms)
            pipe.zadd(WORKERS, {self.info.name: now + self.info.heartbeat_limit_s})
            pipe.zremrangebyscore(WORKERS, "-inf", now - PRUNE_MARGIN_S)
            pipe.pexpire(WORKERS, ttl_ms + int(PRUNE_MARGIN_S * 1000))
            pipe.execute()

    def withdraw(self) -> None:
        """Remove the entry (a worker that stops cleanly leaves at once)."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(WORKERS, self.info.name)
            pipe.delete(self._key)
            pipe.execute()


def _entries(client: redis.Redis) -> list[tuple[str, dict[bytes, bytes]]]:
    """Name and hash of each registered worker whose hash Redis still holds."""
    names = [text(n) for n in client.zrange(WORKERS, 0, -1)]
    if not names:
        return []
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(worker_key(name))
        replies: list[Any] = pipe.execute()
    return [(name, raw) for name, raw in zip(names, replies, strict=True) if raw]


def _parse(name: str, raw: Mapping[bytes, bytes], functions: tuple[str, ...]) -> WorkerInfo:
    where = f"worker registry entry '{name}'"
    body = loads(raw.get(b"info", b"{}"), what=f"{where}: info")
    if not isinstance(body, dict):
        raise DecodeError(f"{where}: info is not a JSON object")
    current = None
    raw_current = raw.get(b"current") or b""
    if raw_current:
        data = loads(raw_current, what=f"{where}: current")
        current = CurrentTask(
            str(data["run_id"]), str(data["task"]), int(data["attempt"]), float(data["started_at"])
        )
    try:
        return WorkerInfo(
            name=name,
            host=str(body["host"]),
            pid=int(body["pid"]),
            queues=tuple(body["queues"]),
            rq_queues=tuple(body["rq_queues"]),
            worker_class=str(body["worker_class"]),
            modules=tuple(body["modules"]),
            profile=str(body["profile"]),
            rqdag_version=str(body["rqdag_version"]),
            python_version=str(body["python_version"]),
            started_at=float(body["started_at"]),
            heartbeat_limit_s=float(body["heartbeat_limit_s"]),
            functions=functions,
            heartbeat_at=float(text(raw[b"heartbeat_at"])) if raw.get(b"heartbeat_at") else None,
            current=current,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"{where}: {type(exc).__name__}: {exc}") from None


def _profiles(client: redis.Redis, profiles: Iterable[str]) -> dict[str, tuple[str, ...]]:
    wanted = sorted(set(profiles))
    if not wanted:
        return {}
    raws: list[Any] = client.mget([profile_key(p) for p in wanted])
    out: dict[str, tuple[str, ...]] = {}
    for profile, raw in zip(wanted, raws, strict=True):
        value = loads(raw, what=f"worker profile '{profile}'") if raw else []
        out[profile] = tuple(str(f) for f in value) if isinstance(value, list) else ()
    return out


def live_workers(client: redis.Redis) -> list[WorkerInfo]:
    """Every live worker, by name, with its functions; an unreadable entry is left out."""
    found: list[WorkerInfo] = []
    for name, raw in _entries(client):
        try:
            found.append(_parse(name, raw, ()))
        except DecodeError:
            continue
    functions = _profiles(client, (w.profile for w in found))
    return sorted((replace(w, functions=functions.get(w.profile, ())) for w in found), key=lambda w: w.name)


@dataclass(frozen=True)
class Fleet:
    """What routing needs of the live workers: who listens where, and what each profile runs."""

    workers: tuple[WorkerInfo, ...] = ()
    functions: Mapping[str, frozenset[str]] = field(default_factory=dict)


def read_fleet(client: redis.Redis, known: Mapping[str, frozenset[str]]) -> Fleet:
    """The live workers (without their function lists) and the function set of each profile.

    ``known`` holds profiles read before: a profile's functions never change (its
    name is their hash), so only new profiles are read.
    """
    workers: list[WorkerInfo] = []
    for name, raw in _entries(client):
        try:
            workers.append(_parse(name, raw, ()))
        except DecodeError:
            continue
    functions = {p: known[p] for p in {w.profile for w in workers} if p in known}
    missing = {w.profile for w in workers} - set(functions)
    for profile, names in _profiles(client, missing).items():
        if names:
            functions[profile] = frozenset(names)
    return Fleet(tuple(sorted(workers, key=lambda w: w.name)), functions)
