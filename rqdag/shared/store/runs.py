"""RunStore: reading and writing runs in Redis (everything but the coordinator's fenced steps).

Used by the client, the coordinator and the CLI. Garbage found in Redis is
reported with the run, task and field named; it never crashes a reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import redis

from rqdag.errors import DecodeError, RunExistsError, RunNotFoundError
from rqdag.shared.model.codec import decode_result, dumps, encode_result, loads
from rqdag.shared.model.definition import decode_definition, decode_table, encode_definition
from rqdag.shared.model.task import TaskResult, TaskStatus
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import FINISHED_RUN_STATUSES, AttemptState, RunStatus
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.retention import RetentionMixin, retention_meta

FINISHED_STATUSES = FINISHED_RUN_STATUSES

V = TypeVar("V", bound=StrEnum)


@dataclass(frozen=True)
class RunMeta:
    """What the meta hash says about a run."""

    run_id: str
    workflow: str
    status: RunStatus
    epoch: int
    params: dict[str, Any]
    concurrency: int | None
    timeout_s: float | None
    deadline_at: float | None
    heartbeat_timeout_s: float
    created_at: float
    updated_at: float | None
    finished_at: float | None
    cancel: str
    fence: int
    task_count: int
    error: str = ""  # why the run is 'error' (the driver's reason, or why its meta is unreadable)

    @property
    def finished(self) -> bool:
        """True once the run succeeded, failed or was cancelled."""
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class DispatchEntry:
    """One attempt in flight, as the dispatch hash holds it."""

    attempt: int
    token: str
    job_id: str
    state: AttemptState
    queue: str = "default"
    worker: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    heartbeat_at: float | None = None
    heartbeat_timeout: float | None = None  # the worker's own limit, if it set one
    last_result: str | None = None

    def to_json(self) -> bytes:
        """The stored form (fields that are None are left out)."""
        body = {k: v for k, v in self.__dict__.items() if v is not None}
        return dumps(body, what=f"dispatch entry {self.token}")


@dataclass
class RunState:
    """Results and in-flight attempts of a run, read at one instant."""

    results: dict[str, TaskResult] = field(default_factory=dict)
    dispatch: dict[str, DispatchEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    last_event_id: bytes = b"0-0"


class RunStore(RetentionMixin):
    """Reads and writes runs; holds no state of its own besides the client.

    Retention's writes (expiry, prune, index cleaning) are in :class:`RetentionMixin`.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    # ---- creating ---------------------------------------------------------------

    def create_run(
        self,
        workflow: Workflow,
        *,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        snapshot: Mapping[str, TaskResult] | None = None,
        concurrency: int | None = None,
        timeout_s: float | None = None,
        heartbeat_timeout_s: float = 30.0,
    ) -> None:
        """Store a new run; raises RunExistsError if ``run_id`` is taken."""
        rk = keys.RunKeys(run_id)
        definition = encode_definition(workflow)
        params_json = dumps(dict(params or {}), what=f"run '{run_id}': params")
        names = {t.name for t in workflow.tasks}
        kept = {
            name: encode_result(result, what=f"run '{run_id}': snapshot entry '{name}'")
            for name, result in (snapshot or {}).items()
            if name in names and result.status is TaskStatus.SUCCESS
        }
        now = time.time()
        if not self.client.hsetnx(rk.meta, "created_at", repr(now)):
            raise RunExistsError(f"run '{run_id}' exists already (resume it instead)")
        meta: dict[str | bytes, str | bytes | int | float] = {
            "workflow": workflow.name,
            "status": RunStatus.PENDING,
            "epoch": 1,
            "params": params_json,
            "concurrency": "" if concurrency is None else concurrency,
            "timeout_s": "" if timeout_s is None else timeout_s,
            "deadline_at": "" if timeout_s is None else now + timeout_s,
            "heartbeat_timeout_s": heartbeat_timeout_s,
            "updated_at": repr(now),
            "cancel": "",
            "task_count": len(names),
            **retention_meta(workflow),
        }
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(rk.meta, mapping=meta)  # type: ignore[arg-type]
            pipe.set(rk.definition, definition)
            if kept:
                pipe.hset(rk.results, mapping=kept)  # type: ignore[arg-type]
            pipe.zadd(keys.RUNS, {run_id: now})
            pipe.sadd(keys.ACTIVE_RUNS, run_id)
            pipe.execute()

    # ---- reading ----------------------------------------------------------------

    def exists(self, run_id: str) -> bool:
        """True if the run's meta hash exists."""
        return bool(self.client.exists(keys.RunKeys(run_id).meta))

    def read_meta(self, run_id: str) -> RunMeta:
        """The run's meta; RunNotFoundError if absent, DecodeError naming a bad field."""
        raw = self.client.hgetall(keys.RunKeys(run_id).meta)
        if not raw:
            raise RunNotFoundError(f"no run '{run_id}'")
        return parse_meta(run_id, raw)

    def read_definition(self, run_id: str) -> Workflow:
        """The run's workflow, rebuilt from its stored definition."""
        return decode_definition(self._definition(run_id), run_id=run_id)

    def read_task_table(self, run_id: str) -> TaskTable:
        """The run's graph as a coordinator loads it (see :class:`TaskTable`)."""
        return decode_table(self._definition(run_id), run_id=run_id)

    def _definition(self, run_id: str) -> bytes | str:
        raw = self.client.get(keys.RunKeys(run_id).definition)
        if raw is None:
            raise DecodeError(f"run '{run_id}': definition is missing")
        return raw

    def read_state(self, run_id: str) -> RunState:
        """Results, dispatch entries and the events position, in one MULTI/EXEC."""
        rk = keys.RunKeys(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xrevrange(rk.events, count=1)
            pipe.hgetall(rk.results)
            pipe.hgetall(rk.dispatch)
            last, raw_results, raw_dispatch = pipe.execute()
        state = RunState(last_event_id=last[0][0] if last else b"0-0")
        decode_into(state, run_id, raw_results.items(), raw_dispatch.items())
        return state

    def read_results(self, run_id: str) -> dict[str, TaskResult]:
        """The run's snapshot (unreadable entries become failures naming the problem)."""
        if not self.exists(run_id):
            raise RunNotFoundError(f"no run '{run_id}'")
        return self.read_state(run_id).results

    def list_runs(self, limit: int = 50) -> list[RunMeta]:
        """The newest runs first; a run whose meta cannot be read is listed as ``error``, saying why.

        Ids of expired runs (no meta any more) are forgotten from the indexes.
        """
        indexed: list[tuple[Any, float]] = self.client.zrevrange(  # type: ignore[assignment]
            keys.RUNS, 0, max(limit - 1, 0), withscores=True
        )
        with self.client.pipeline(transaction=False) as pipe:
            for raw_id, _ in indexed:
                pipe.hgetall(keys.RunKeys(text(raw_id)).meta)
            raws = pipe.execute(raise_on_error=False)
        self.forget_runs([text(raw_id) for (raw_id, _), raw in zip(indexed, raws, strict=True) if not raw])
        out = []
        for (raw_id, created_at), raw in zip(indexed, raws, strict=True):
            run_id = text(raw_id)
            if isinstance(raw, redis.ResponseError):
                reason = f"run '{run_id}': meta is unreadable: {raw}"
                out.append(unreadable_meta(run_id, {}, reason, created_at))
            elif raw:
                try:
                    out.append(parse_meta(run_id, raw))
                except DecodeError as exc:
                    out.append(unreadable_meta(run_id, raw, str(exc), created_at))
        return out

    def active_runs(self) -> list[str]:
        """Run ids that still need a coordinator."""
        return sorted(text(m) for m in self.client.smembers(keys.ACTIVE_RUNS))

    def mark_inactive(self, run_id: str) -> None:
        """Drop a finished run from the coordinators' work list."""
        self.client.srem(keys.ACTIVE_RUNS, run_id)

    # ---- changing -----------------------------------------------------------------

    def request_cancel(self, run_id: str, reason: str = "cancelled by request") -> None:
        """Ask the run's coordinator to cancel it."""
        meta = self.read_meta(run_id)
        if not meta.finished:
            self.client.hset(keys.RunKeys(run_id).meta, "cancel", reason or "cancelled")

    def delete_run(self, run_id: str) -> None:
        """Remove every key of the run."""
        rk = keys.RunKeys(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*rk.all())
            pipe.zrem(keys.RUNS, run_id)
            pipe.srem(keys.ACTIVE_RUNS, run_id)
            pipe.zrem(keys.EXPIRING_RUNS, run_id)
            pipe.execute()


def decode_into(
    state: RunState,
    run_id: str,
    raw_results: Iterable[tuple[Any, Any]],
    raw_dispatch: Iterable[tuple[Any, Any]],
) -> None:
    """Decode raw hash fields into ``state``; what cannot be read is named in ``state.problems``.

    An unreadable result becomes a failure saying so; an unreadable dispatch entry is left out.
    """
    for raw_name, raw_value in raw_results:
        name = text(raw_name)
        try:
            state.results[name] = decode_result(raw_value, what=f"run '{run_id}': results field '{name}'")
        except DecodeError as exc:
            state.problems.append(str(exc))
            state.results[name] = TaskResult.failure(f"stored result is unreadable: {exc}")
    for raw_name, raw_value in raw_dispatch:
        name = text(raw_name)
        try:
            state.dispatch[name] = parse_dispatch_entry(run_id, name, raw_value)
        except DecodeError as exc:
            state.problems.append(str(exc))


def parse_meta(run_id: str, raw: Mapping[Any, Any]) -> RunMeta:
    """Decode a meta hash; DecodeError names the run and the field."""
    fields = {text(k): text(v) for k, v in raw.items()}

    def number(name: str, default: float | None = None) -> float | None:
        value = fields.get(name, "")
        if value == "":
            return default
        try:
            return float(value)
        except ValueError:
            raise DecodeError(f"run '{run_id}': meta field '{name}' is not a number: {value!r}") from None

    params = loads(fields.get("params") or "{}", what=f"run '{run_id}': meta field 'params'")
    if not isinstance(params, dict):
        raise DecodeError(f"run '{run_id}': meta field 'params' must be a JSON object")
    concurrency = number("concurrency")
    where = f"run '{run_id}': meta field 'status'"
    status = _member(RunStatus, fields.get("status", RunStatus.PENDING), where)
    return RunMeta(
        run_id=run_id,
        workflow=fields.get("workflow", ""),
        status=status,
        epoch=int(number("epoch", 1) or 1),
        params=params,
        concurrency=int(concurrency) if concurrency else None,
        timeout_s=number("timeout_s"),
        deadline_at=number("deadline_at"),
        heartbeat_timeout_s=number("heartbeat_timeout_s", 30.0) or 30.0,
        created_at=number("created_at", 0.0) or 0.0,
        updated_at=number("updated_at"),
        finished_at=number("finished_at"),
        cancel=fields.get("cancel", ""),
        fence=int(number("fence", 0) or 0),
        task_count=int(number("task_count", 0) or 0),
        error=fields.get("error", ""),
    )


def unreadable_meta(run_id: str, raw: Mapping[Any, Any], reason: str, created_at: float) -> RunMeta:
    """A stand-in for a meta hash that cannot be decoded: status ``error``, with ``reason``."""
    fields = {text(k): text(v) for k, v in raw.items()}
    return RunMeta(
        run_id=run_id,
        workflow=fields.get("workflow", ""),
        status=RunStatus.ERROR,
        epoch=0,
        params={},
        concurrency=None,
        timeout_s=None,
        deadline_at=None,
        heartbeat_timeout_s=30.0,
        created_at=created_at,
        updated_at=None,
        finished_at=None,
        cancel="",
        fence=0,
        task_count=0,
        error=reason,
    )


def parse_dispatch_entry(run_id: str, task: str, raw: bytes | str) -> DispatchEntry:
    """Decode one dispatch entry; DecodeError names the run, task and field."""
    where = f"run '{run_id}': dispatch field '{task}'"
    body = loads(raw, what=where)
    if not isinstance(body, dict):
        raise DecodeError(f"{where} is not a JSON object")
    try:
        return DispatchEntry(
            attempt=int(body["attempt"]),
            token=str(body["token"]),
            job_id=str(body["job_id"]),
            state=_member(AttemptState, str(body["state"]), f"{where}: field 'state'"),
            queue=str(body.get("queue") or "default"),
            worker=body.get("worker"),
            queued_at=_float_or_none(body.get("queued_at")),
            started_at=_float_or_none(body.get("started_at")),
            heartbeat_at=_float_or_none(body.get("heartbeat_at")),
            heartbeat_timeout=_float_or_none(body.get("heartbeat_timeout")),
            last_result=body.get("last_result"),
        )
    except KeyError as exc:
        raise DecodeError(f"{where}: field {exc.args[0]!r} is missing") from None
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{where}: {exc}") from None


def _member(vocabulary: type[V], value: str, what: str) -> V:
    """``value`` as a member of ``vocabulary``; DecodeError naming ``what`` if it is none."""
    try:
        return vocabulary(value)
    except ValueError:
        known = ", ".join(vocabulary)
        raise DecodeError(f"{what} is {value!r}, not one of {known}") from None


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def text(value: Any) -> str:
    """A Redis reply as text (replies are bytes: RQ needs decode_responses off)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
