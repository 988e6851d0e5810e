"""RunStore's writes for what is done to a run from outside its coordinator.

A resume's new epoch, an operator's resolution, a signal for a wait and an
operator's audit entry: each is one MULTI/EXEC (or one command).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from redis.client import Pipeline

from rqdag.shared.model.codec import dumps, encode_result
from rqdag.shared.model.definition import encode_definition
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AuditKind, EventKind, RunStatus
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.records import RunMeta
from rqdag.shared.store.retention import retention_meta
from rqdag.shared.store.scripts import EVENTS_MAXLEN, NotifyDriver


class OperatorWritesMixin:
    """:class:`~rqdag.shared.store.runs.RunStore`'s writes for resume, resolve, signal and audit."""

    client: redis.Redis
    persist_run: Callable[[Pipeline, str], None]

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
            NotifyDriver.register(self.client).queue(pipe, rk)
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
            NotifyDriver.register(self.client).queue(pipe, rk)
            pipe.execute()

    def append_audit(self, run_id: str, entry: Mapping[str, Any]) -> None:
        """Add an operator's action (``entry``: its ``kind``, who, when, why) to the run's audit stream."""
        body = dumps(dict(entry), what=f"run '{run_id}': audit entry")
        self.client.xadd(keys.RunKeys(run_id).audit, {"kind": str(entry["kind"]), "entry": body})
