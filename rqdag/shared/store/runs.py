"""RunStore: the one Python writer of a run's keys (the Lua scripts are the others).

Every write to a run's keys outside the atomic steps' Lua scripts is a method
here: creating a run, the fenced dispatch transaction, a resume's new epoch, an
operator's resolution, cancel requests, errors and deletion. Resume and resolve
(:mod:`.resume`, :mod:`.resolve`) plan and check; this class writes. What the
keys hold, once read, is in :mod:`.records`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from redis.client import Pipeline

from rqdag.errors import DecodeError, LeaseLostError, RunExistsError, RunNotFoundError
from rqdag.shared.model.codec import dumps, encode_result
from rqdag.shared.model.definition import decode_definition, decode_table, encode_definition
from rqdag.shared.model.mapping import parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import AuditKind, EventKind, RunStatus, TaskStatus
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.driving import REFUSAL_FIELD
from rqdag.shared.store.expansions import ExpansionMixin
from rqdag.shared.store.records import (
    FINISHED_STATUSES,
    RunMeta,
    RunState,
    decode_into,
    parse_meta,
    text,
    unreadable_meta,
)
from rqdag.shared.store.retention import RetentionMixin, retention_meta
from rqdag.shared.store.scripts import EVENTS_MAXLEN


class RunStore(RetentionMixin, ExpansionMixin):
    """Reads and writes runs; holds no state of its own besides the client.

    Retention's writes (expiry, prune, index cleaning) are in :class:`RetentionMixin`,
    mapped tasks' children in :class:`ExpansionMixin`.
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
        traceparent: str | None = None,
        parent: tuple[str, str, int] | None = None,
    ) -> None:
        """Store a new run; raises RunExistsError if ``run_id`` is taken.

        ``traceparent``: the submitter's W3C trace context, the parent of the run's spans.
        ``parent``: (run, subflow task, epoch) when this is a child run.
        """
        rk = keys.RunKeys(run_id)
        definition = encode_definition(workflow)
        params_json = dumps(dict(params or {}), what=f"run '{run_id}': params")
        names = {t.name for t in workflow.tasks}
        mapped = {t.name for t in workflow.tasks if t.map_over is not None}
        kept = {
            name: encode_result(result, what=f"run '{run_id}': snapshot entry '{name}'")
            for name, result in (snapshot or {}).items()
            if (name in names or parent_of(name) in mapped) and result.status is TaskStatus.SUCCESS
        }
        now = time.time()
        meta: dict[str | bytes, str | bytes | int | float] = {
            "created_at": repr(now),
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
            "traceparent": traceparent or "",
            **retention_meta(workflow),
            **(
                {}
                if parent is None
                else {"parent": parent[0], "parent_task": parent[1], "parent_epoch": parent[2]}
            ),
        }
        taken = RunExistsError(f"run '{run_id}' exists already (resume it instead)")
        # One MULTI/EXEC, the meta watched: a run is stored whole or not at all (a full
        # Redis refuses the lot), and a rival creator makes this one fail, not retry.
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(rk.meta)  # type: ignore[no-untyped-call]
                if pipe.exists(rk.meta):
                    raise taken
                pipe.multi()
                pipe.hset(rk.meta, mapping=meta)  # type: ignore[arg-type]
                pipe.set(rk.definition, definition)
                if kept:
                    pipe.hset(rk.results, mapping=kept)  # type: ignore[arg-type]
                pipe.zadd(keys.RUNS, {run_id: now})
                pipe.sadd(keys.ACTIVE_RUNS, run_id)
                pipe.execute()
            except redis.WatchError:
                raise taken from None

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
        """Drop a finished run from the coordinators' work list, unless a resume opened it again."""
        meta_key = keys.RunKeys(run_id).meta
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(meta_key)  # type: ignore[no-untyped-call]
                status = pipe.hget(meta_key, "status")
                if status is not None and text(status) not in FINISHED_STATUSES:
                    return  # resumed meanwhile: its new epoch needs a coordinator
                pipe.multi()
                pipe.srem(keys.ACTIVE_RUNS, run_id)
                pipe.execute()
            except redis.WatchError:
                return  # its meta changed meanwhile (a resume): it stays on the list

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

    def dispatch(
        self,
        run_id: str,
        lease_value: str,
        entries: Mapping[str, bytes],
        enqueue: Callable[[Pipeline], None],
    ) -> None:
        """The dispatch step: ``enqueue`` (RQ's ``enqueue_many(..., pipeline=)``) and the
        dispatch ``entries`` in one MULTI/EXEC, only while the lease is ``lease_value``.

        LeaseLostError if the lease is not, or stops being, ``lease_value`` before EXEC.
        """
        rk = keys.RunKeys(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(rk.lease)  # type: ignore[no-untyped-call]
                if text(pipe.get(rk.lease) or b"") != lease_value:
                    raise LeaseLostError(f"run '{run_id}': lease lost before dispatch")
                pipe.multi()
                enqueue(pipe)
                pipe.hset(rk.dispatch, mapping=entries)  # type: ignore[arg-type]
                pipe.execute()
            except redis.WatchError:
                raise LeaseLostError(f"run '{run_id}': lease changed during dispatch") from None

    def open_epoch(
        self,
        meta: RunMeta,
        *,
        set_aside: Mapping[str, TaskResult],
        task_count: int,
        workflow: Workflow | None = None,
        definition: Workflow | None = None,
        restamp: Mapping[str, TaskResult] | None = None,
        params: Mapping[str, Any] | None = None,
        epoch_params: Mapping[str, Any] | None = None,
    ) -> None:
        """Start the run's next epoch in one MULTI/EXEC (what ``rqdag resume`` writes).

        The ``set_aside`` results go to the audit stream and out of the results,
        the ``restamp`` ones replace theirs (kept under a new definition hash),
        every dispatch entry goes, ``workflow`` (if given) replaces the
        definition and the retention, ``definition`` the definition alone,
        ``params`` and ``epoch_params`` (if given) the meta fields of those names,
        and the meta is reset to a pending run of epoch + 1.
        """
        run_id = meta.run_id
        rk = keys.RunKeys(run_id)
        now = time.time()
        fields: dict[str | bytes, str | bytes | int | float] = {}
        if params is not None:
            fields["params"] = dumps(dict(params), what=f"run '{run_id}': params")
        if epoch_params is not None:
            fields["epoch_params"] = dumps(dict(epoch_params), what=f"run '{run_id}': params of each epoch")
        restamped = {
            name: encode_result(result, what=f"run '{run_id}': result of '{name}'")
            for name, result in (restamp or {}).items()
        }
        with self.client.pipeline(transaction=True) as pipe:
            for name, result in set_aside.items():
                body = dumps(
                    {"epoch": meta.epoch, "task": name, "result": result.to_dict()},
                    what=f"run '{run_id}': audit of '{name}'",
                )
                pipe.xadd(rk.audit, {"kind": AuditKind.RESUME, "entry": body})
            if set_aside:
                pipe.hdel(rk.results, *set_aside)
            if restamped:
                pipe.hset(rk.results, mapping=restamped)  # type: ignore[arg-type]
            pipe.delete(rk.dispatch)
            pipe.unlink(rk.child_rows, rk.expansions)  # the new epoch expands its mapped tasks afresh
            self.persist_run(pipe, run_id)  # a resumed run is open again: it no longer expires
            stored = workflow if workflow is not None else definition
            if stored is not None:
                pipe.set(rk.definition, encode_definition(stored))
            if workflow is not None:
                pipe.hset(rk.meta, mapping=retention_meta(workflow))  # type: ignore[arg-type]
            pipe.hset(
                rk.meta,
                mapping={
                    "epoch": meta.epoch + 1,
                    "status": RunStatus.PENDING,
                    "cancel": "",
                    "error": "",
                    "finished_at": "",
                    "updated_at": repr(now),
                    "deadline_at": "" if meta.timeout_s is None else now + meta.timeout_s,
                    "task_count": task_count,
                },
            )
            if fields:
                pipe.hset(rk.meta, mapping=fields)  # type: ignore[arg-type]
            pipe.xadd(rk.events, {"kind": EventKind.RESUME, "epoch": meta.epoch + 1}, maxlen=EVENTS_MAXLEN)
            pipe.sadd(keys.ACTIVE_RUNS, run_id)
            pipe.execute()

    def record_resolution(self, run_id: str, task: str, result: TaskResult, audit: Mapping[str, Any]) -> None:
        """An operator's ``result`` for ``task``, its ``audit`` entry and a ``resolved``
        event for the coordinator, in one MULTI/EXEC."""
        rk = keys.RunKeys(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(rk.results, task, encode_result(result, what=f"resolution of '{task}'"))
            pipe.xadd(rk.audit, {"entry": dumps(dict(audit), what="audit entry")})
            pipe.xadd(rk.events, {"kind": EventKind.RESOLVED, "task": task}, maxlen=EVENTS_MAXLEN)
            pipe.execute()

    def record_signal(self, run_id: str, task: str, signal: Mapping[str, Any]) -> None:
        """A ``signal`` for the wait ``task``, its audit entry and a ``signal`` event for the
        coordinator, in one MULTI/EXEC."""
        rk = keys.RunKeys(run_id)
        body = dumps(dict(signal), what=f"run '{run_id}': signal for '{task}'")
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(rk.signals, task, body)
            pipe.xadd(
                rk.audit,
                {
                    "kind": AuditKind.SIGNAL,
                    "entry": dumps({"kind": AuditKind.SIGNAL, "task": task, **signal}, what="audit entry"),
                },
            )
            pipe.xadd(rk.events, {"kind": EventKind.SIGNAL, "task": task}, maxlen=EVENTS_MAXLEN)
            pipe.execute()

    def read_result_json(self, run_id: str, task: str) -> bytes | None:
        """The stored result JSON of one task, or None."""
        raw: Any = self.client.hget(keys.RunKeys(run_id).results, task)
        return None if raw is None else bytes(raw)

    def read_parent(self, run_id: str) -> tuple[str, str, int] | None:
        """(run, subflow task, epoch) of the run that started this child run, or None."""
        raw: Any = self.client.hmget(keys.RunKeys(run_id).meta, ["parent", "parent_task", "parent_epoch"])
        if not raw[0] or not raw[1]:
            return None
        try:
            epoch = int(text(raw[2] or b"0"))
        except ValueError:
            epoch = 0
        return text(raw[0]), text(raw[1]), epoch

    def adopt_child(self, run_id: str, epoch: int) -> None:
        """Note that the parent's epoch ``epoch`` took this child run over (a resume of both)."""
        self.client.hset(keys.RunKeys(run_id).meta, "parent_epoch", epoch)

    def note_child_ended(self, parent: str, task: str) -> None:
        """Tell the parent run's coordinator that the child run of its subflow ``task`` ended."""
        self.client.xadd(
            keys.RunKeys(parent).events, {"kind": EventKind.CHILD, "task": task}, maxlen=EVENTS_MAXLEN
        )

    def read_signals(self, run_id: str, tasks: list[str] | None = None) -> dict[str, bytes]:
        """The signals stored for the run's waits (all, or those of ``tasks``), raw JSON by task."""
        rk = keys.RunKeys(run_id)
        if tasks is None:
            raw: Any = self.client.hgetall(rk.signals)
            return {text(k): v for k, v in raw.items()}
        values: Any = self.client.hmget(rk.signals, tasks) if tasks else []
        return {t: v for t, v in zip(tasks, values, strict=True) if v is not None}

    def read_timers(self, run_id: str) -> dict[str, float]:
        """The timers of the run's waits and sleeps: ``"epoch:task"`` to the unix time it fires."""
        raw: Any = self.client.hgetall(keys.RunKeys(run_id).timers)
        out = {}
        for field, value in raw.items():
            try:
                out[text(field)] = float(text(value))
            except ValueError:
                continue
        return out

    def append_audit(self, run_id: str, entry: Mapping[str, Any]) -> None:
        """Add an operator's action (``entry``: its ``kind``, who, when, why) to the run's audit stream."""
        body = dumps(dict(entry), what=f"run '{run_id}': audit entry")
        self.client.xadd(keys.RunKeys(run_id).audit, {"kind": str(entry["kind"]), "entry": body})

    def mark_error(self, run_id: str, reason: str) -> None:
        """Note why the run cannot go on (its status is set through the fenced script)."""
        self.client.hset(keys.RunKeys(run_id).meta, "error", reason)

    def note_refusal(self, run_id: str, problem: str) -> bool:
        """Note why no coordinator can drive the run (a permission Redis refused), for
        ``status`` and ``watch``; False when the run is gone or Redis refused this too."""
        rk = keys.RunKeys(run_id)
        try:
            if not self.client.exists(rk.meta):
                return False  # never make a meta hash for a run that is gone
            self.client.hset(rk.meta, REFUSAL_FIELD, problem)
        except redis.RedisError:
            return False
        return True

    def drop_lease(self, run_id: str) -> None:
        """Delete the run's lease, unfenced: only for a caller that knows its holder is
        gone (the embedded default: holding its folder's lock proves the previous owner,
        and its workers with it, are gone)."""
        self.client.delete(keys.RunKeys(run_id).lease)

    def note_driver(self, run_id: str, owner: str) -> str | None:
        """Record ``owner`` as the run's coordinator (it holds the lease); returns the previous one."""
        meta = keys.RunKeys(run_id).meta
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hget(meta, "driver")
            pipe.hset(meta, "driver", owner)
            previous, _ = pipe.execute()
        return None if previous is None else text(previous)
