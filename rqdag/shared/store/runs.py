"""RunStore: the one Python writer of a run's keys (the Lua scripts are the others).

Every write to a run's keys outside the atomic steps' Lua scripts is a method
of RunStore: here creating a run, the fenced dispatch transaction, cancel
requests, errors and deletion; in the mixins it composes a resume's new epoch,
an operator's resolution and a signal (:mod:`.operator_writes`), retention
(:mod:`.retention`) and mapped tasks' children (:mod:`.expansions`). Its reads
are in :mod:`.run_reads`. Resume and resolve
(:mod:`.resume`, :mod:`.resolve`) plan and check; this class writes. What the
keys hold, once read, is in :mod:`.records`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis

from rqdag.errors import RunExistsError
from rqdag.shared.model.codec import dumps, encode_result
from rqdag.shared.model.definition import encode_definition
from rqdag.shared.model.mapping import parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import EventKind, RunStatus, TaskStatus
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.driving import REFUSAL_FIELD
from rqdag.shared.store.expansions import ExpansionMixin
from rqdag.shared.store.operator_writes import OperatorWritesMixin
from rqdag.shared.store.records import FINISHED_STATUSES, text
from rqdag.shared.store.retention import RetentionMixin, retention_meta
from rqdag.shared.store.run_reads import RunReadsMixin
from rqdag.shared.store.scripts import EVENTS_MAXLEN, NotifyDriver
from rqdag.shared.store.submissions import queue_announcement

Meta = dict[str | bytes, str | bytes | int | float]


class RunStore(RunReadsMixin, OperatorWritesMixin, RetentionMixin, ExpansionMixin):
    """Reads and writes runs; holds no state of its own besides the client.

    Its reads are in :class:`RunReadsMixin`; a resume's, a resolution's, a signal's
    and an audit entry's writes in :class:`OperatorWritesMixin`; retention's writes
    (expiry, prune, index cleaning) in :class:`RetentionMixin`; mapped tasks'
    children in :class:`ExpansionMixin`.
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
        announce: bool = False,
    ) -> None:
        """Store a new run; raises RunExistsError if ``run_id`` is taken.

        ``traceparent``: the submitter's W3C trace context, the parent of the run's spans.
        ``parent``: (run, subflow task, epoch) when this is a child run. ``announce``:
        append its submissions entry (the coordinators' nudge) in the same MULTI/EXEC.
        """
        rk = keys.RunKeys(run_id)
        definition = encode_definition(workflow)
        params_json = dumps(dict(params or {}), what=f"run '{run_id}': params")
        names = {t.name for t in workflow.tasks}
        kept = _kept_results(workflow, names, run_id, snapshot or {})
        now = time.time()
        meta: Meta = {
            **_new_meta(workflow, now, params_json, len(names), concurrency, timeout_s, heartbeat_timeout_s),
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
                if announce:
                    queue_announcement(pipe, run_id)
                pipe.execute()
            except redis.WatchError:
                raise taken from None

    # ---- changing -----------------------------------------------------------------

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

    def wake_coordinator(self, owner: str, run_id: str, *, maxlen: int = 16, ttl_ms: int = 60_000) -> None:
        """Wake the loops of coordinator ``owner`` from their blocking read: it handed them ``run_id``."""
        wake = keys.coordinator_wake(owner)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(wake, {"run": run_id}, maxlen=maxlen, approximate=False)
            pipe.pexpire(wake, ttl_ms)
            pipe.execute()

    def request_cancel(self, run_id: str, reason: str = "cancelled by request") -> None:
        """Ask the run's coordinator to cancel it."""
        meta = self.read_meta(run_id)
        if not meta.finished:  # the event wakes a coordinator that multiplexes the run's stream
            rk = keys.RunKeys(run_id)
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(rk.meta, "cancel", reason or "cancelled")
                pipe.xadd(rk.events, {"kind": EventKind.CANCEL}, maxlen=EVENTS_MAXLEN)
                NotifyDriver.register(self.client).queue(pipe, rk)
                pipe.execute()

    def delete_run(self, run_id: str) -> None:
        """Remove every key of the run."""
        rk = keys.RunKeys(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*rk.all())
            pipe.zrem(keys.RUNS, run_id)
            pipe.srem(keys.ACTIVE_RUNS, run_id)
            pipe.zrem(keys.EXPIRING_RUNS, run_id)
            pipe.execute()

    def adopt_child(self, run_id: str, epoch: int) -> None:
        """Note that the parent's epoch ``epoch`` took this child run over (a resume of both)."""
        self.client.hset(keys.RunKeys(run_id).meta, "parent_epoch", epoch)

    def note_child_ended(self, parent: str, task: str) -> None:
        """Tell the parent run's coordinator that the child run of its subflow ``task`` ended."""
        rk = keys.RunKeys(parent)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(rk.events, {"kind": EventKind.CHILD, "task": task}, maxlen=EVENTS_MAXLEN)
            NotifyDriver.register(self.client).queue(pipe, rk)
            pipe.execute()

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


def _kept_results(
    workflow: Workflow, names: set[str], run_id: str, snapshot: Mapping[str, TaskResult]
) -> dict[str, bytes]:
    """The snapshot's successes that a new run of ``workflow`` (tasks ``names``) keeps: its tasks'
    and its mapped tasks' children's."""
    mapped = {t.name for t in workflow.tasks if t.map_over is not None}
    return {
        name: encode_result(result, what=f"run '{run_id}': snapshot entry '{name}'")
        for name, result in snapshot.items()
        if (name in names or parent_of(name) in mapped) and result.status is TaskStatus.SUCCESS
    }


def _new_meta(
    workflow: Workflow,
    now: float,
    params_json: bytes,
    task_count: int,
    concurrency: int | None,
    timeout_s: float | None,
    heartbeat_timeout_s: float,
) -> Meta:
    """The meta hash of a new run created at ``now`` (pending, epoch 1)."""
    return {
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
        "task_count": task_count,
    }
