"""RunStore's reads: a run's meta, definition, state, results, signals and timers, and the run list.

Nothing here writes a run's keys (the run list forgets ids whose keys are gone
through :meth:`RetentionMixin.forget_runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis

from rqdag.errors import DecodeError, RunNotFoundError
from rqdag.shared.model.definition import decode_definition, decode_table
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.records import (
    PARENT_FIELDS,
    RunMeta,
    RunState,
    decode_into,
    parent_of,
    parse_meta,
    text,
    unreadable_meta,
)


class RunReadsMixin:
    """What :class:`~rqdag.shared.store.runs.RunStore` reads."""

    client: redis.Redis
    forget_runs: Callable[[Sequence[str]], None]

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

    def read_snapshot(self, run_id: str) -> dict[str, TaskResult]:
        """The run's results hash decoded, in one read (unreadable entries become failures
        naming the problem); empty for a run that has none, or is gone."""
        state = RunState()
        decode_into(state, run_id, self.client.hgetall(keys.RunKeys(run_id).results).items(), ())
        return state.results

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
        for (raw_id, created_at), reply in zip(indexed, raws, strict=True):
            run_id = text(raw_id)
            if isinstance(reply, redis.ResponseError):
                reason = f"run '{run_id}': meta is unreadable: {reply}"
                out.append(unreadable_meta(run_id, {}, reason, created_at))
            elif reply:
                try:
                    out.append(parse_meta(run_id, reply))
                except DecodeError as exc:
                    out.append(unreadable_meta(run_id, reply, str(exc), created_at))
        return out

    def active_runs(self) -> list[str]:
        """Run ids that still need a coordinator."""
        return sorted(text(m) for m in self.client.smembers(keys.ACTIVE_RUNS))

    def read_result_json(self, run_id: str, task: str) -> bytes | None:
        """The stored result JSON of one task, or None."""
        raw: Any = self.client.hget(keys.RunKeys(run_id).results, task)
        return None if raw is None else bytes(raw)

    def read_parent(self, run_id: str) -> tuple[str, str, int] | None:
        """(run, subflow task, epoch) of the run that started this child run, or None."""
        return parent_of(self.client.hmget(keys.RunKeys(run_id).meta, list(PARENT_FIELDS)))

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

    def read_cancel_requests(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The runs of ``run_ids`` asked to cancel, with the reason given (one pipelined read)."""
        with self.client.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.hget(keys.RunKeys(run_id).meta, "cancel")
            reasons = pipe.execute()
        return {run_id: text(reason) for run_id, reason in zip(run_ids, reasons, strict=True) if reason}
