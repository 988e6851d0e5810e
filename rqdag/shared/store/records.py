"""What a run's keys hold, as Python values: RunMeta, DispatchEntry, RunState.

The parse functions read raw Redis replies; garbage is reported with the run,
task and field named (DecodeError), never as a crash of the reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from rqdag.errors import DecodeError
from rqdag.shared.model.codec import decode_result, dumps, loads
from rqdag.shared.model.epochs import parse_epoch_params
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import FINISHED_RUN_STATUSES, AttemptState, RunStatus

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
    epoch_params: dict[int, dict[str, Any]] = field(default_factory=dict)  # from the first resume on
    traceparent: str = ""  # the W3C trace context of its submitter (empty: none)

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
    rq_queue: str | None = None  # the RQ queue its job was routed to (a capability queue)
    waiting: str | None = None  # why no job exists yet: no live worker can run it (see routing)
    failures: int = 0  # failed or lost attempts of the task before this one (its retry budget used)
    retry_of: str | None = None  # token of the attempt whose reported failure this one retries

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
    unreadable_dispatch: list[str] = field(default_factory=list)  # tasks whose entry is garbage
    last_event_id: bytes = b"0-0"

    def in_flight(self) -> dict[str, dict[str, Any]]:
        """The attempts still out, as ``rqdag status --json`` and the dashboard show them."""
        return {
            name: {
                "state": e.state,
                "attempt": e.attempt,
                "worker": e.worker,
                "queue": e.queue,
                "started_at": e.started_at,
                "heartbeat_at": e.heartbeat_at,
                "waiting": e.waiting,
            }
            for name, e in self.dispatch.items()
            if name not in self.results
        }


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
            state.unreadable_dispatch.append(name)


PARENT_FIELDS = ("parent", "parent_task", "parent_epoch")  # of a child run's meta


def parent_of(raw: Sequence[Any]) -> tuple[str, str, int] | None:
    """(run, subflow task, epoch) from the :data:`PARENT_FIELDS` of a meta (HMGET), or None."""
    if not raw[0] or not raw[1]:
        return None
    try:
        epoch = int(text(raw[2] or b"0"))
    except ValueError:
        epoch = 0
    return text(raw[0]), text(raw[1]), epoch


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
    epoch_params = parse_epoch_params(fields.get("epoch_params") or "{}", what=f"run '{run_id}': meta")
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
        epoch_params=epoch_params,
        traceparent=fields.get("traceparent", ""),
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
        attempt = int(body["attempt"])
        # an entry written before failures were kept: count every earlier attempt as one
        failures = int(body["failures"]) if "failures" in body else max(attempt - 1, 0)
        return DispatchEntry(
            attempt=attempt,
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
            rq_queue=body.get("rq_queue"),
            waiting=body.get("waiting"),
            failures=failures,
            retry_of=_str_or_none(body.get("retry_of")),
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


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def text(value: Any) -> str:
    """A Redis reply as text (replies are bytes: RQ needs decode_responses off)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
