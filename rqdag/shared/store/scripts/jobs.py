"""A concurrent worker's batch scripts: RQ's start of the jobs it takes, and its slots' finishes
with RQ's success bookkeeping of each job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.typing import EncodableT

from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import EVENTS_MAXLEN, ScriptWrapper, text
from rqdag.shared.store.scripts.outcomes import FinishOutcome


@dataclass(frozen=True)
class RqWorker:
    """The worker's part of RQ's bookkeeping: its keys and RQ's words (all from RQ's own API)."""

    worker_key: str
    worker_executions_key: str
    worker: str  # the worker's name
    rq_finished: str  # RQ's JobStatus of a finished job
    rq_successful: str  # RQ's Result.Type of a successful result
    rq_started: str  # RQ's JobStatus of a started job
    rq_busy: str  # RQ's WorkerStatus of a busy worker


@dataclass(frozen=True)
class RqStart:
    """RQ's start of one job taken (what RQ writes before it runs it), as keys and values."""

    job_key: str
    execution_key: str
    job_executions_key: str
    job_id: str
    execution_id: str
    execution_member: str  # the execution's member in the started registry
    ttl: int  # the job's heartbeat TTL, seconds
    started_score: float  # its score in the started registry
    executions_score: float  # its score in the job's executions registry


@dataclass(frozen=True)
class RqSuccess:
    """RQ's success bookkeeping of one job (what RQ's success path writes), as keys and values."""

    job_key: str
    job_results_key: str
    finished_key: str
    started_key: str
    execution_key: str
    job_executions_key: str
    dependents_key: str
    dependencies_key: str
    job_id: str
    execution_id: str
    execution_member: str  # the execution's member in the started registry
    started_at: str  # RQ's text form of a time
    ended_at: str
    working_time: float  # seconds
    return_value: str  # RQ's encoded form of the job's return value
    execution_started_at: float  # unix seconds
    execution_ended_at: float
    result_ttl: int  # seconds, > 0
    finished_score: float  # the job's score in the finished registry

    def keys(self) -> list[str]:
        """The call's RQ keys, in the script's order."""
        return [
            self.job_key,
            self.job_results_key,
            self.finished_key,
            self.started_key,
            self.execution_key,
            self.job_executions_key,
            self.dependents_key,
            self.dependencies_key,
        ]

    def args(self) -> list[EncodableT]:
        """The call's RQ arguments, in the script's order."""
        return [
            self.job_id,
            self.execution_id,
            self.execution_member,
            self.started_at,
            self.ended_at,
            repr(self.working_time),
            self.return_value,
            repr(self.execution_started_at),
            repr(self.execution_ended_at),
            self.result_ttl,
            repr(self.finished_score),
        ]


@dataclass(frozen=True)
class FinishJob:
    """One call of a ``finish_jobs`` batch: its KEYS and ARGV, and whether RQ's part rides along."""

    keys: list[str]
    args: list[EncodableT]
    with_rq: bool


CALL_KEYS = 11
CALL_ARGS = 19
_RQ_KEYS = 8
_NO_RQ_ARGS: list[EncodableT] = [""] * 11


class FinishJobs(ScriptWrapper):
    """``finish_jobs.lua``: a batch of finishes (each fenced by its own token) in one script run."""

    name = "finish_jobs"

    def __call__(
        self, calls: Sequence[FinishJob], *, worker: RqWorker, client: redis.Redis | None = None
    ) -> list[FinishOutcome]:
        """Each call's outcome, in order: written (with RQ's part, when it rides along) or refused."""
        keys, args = self._batch(calls, worker)
        return self.parse(self._eval(keys, args, client), len(calls))

    @staticmethod
    def request(
        keys: RunKeys,
        *,
        task: str,
        token: str,
        result: bytes,
        status: str,
        final: bool,
        now: float,
        inline: bool,
        rq: RqSuccess | None,
    ) -> FinishJob:
        """One call: finish_task's parameters, and RQ's success bookkeeping when written (``rq``)."""
        flags = ("1" if final else "0", now, "1" if inline else "0", "1" if rq is not None else "0")
        run_args: list[EncodableT] = [task, token, result, status, *flags]
        run_keys = [keys.results, keys.dispatch, keys.events]
        if rq is None:  # the run's own key stands in for RQ's: any key a script names must be one the
            # Redis user may touch (an ACL refuses the whole call otherwise)
            return FinishJob(run_keys + [keys.results] * _RQ_KEYS, run_args + _NO_RQ_ARGS, False)
        return FinishJob(run_keys + rq.keys(), run_args + rq.args(), True)

    def batch(
        self, calls: Sequence[FinishJob], worker: RqWorker, client: redis.Redis
    ) -> list[FinishOutcome | Exception]:
        """Every call in one script run, for a combiner: each one's answer (an error reaches all)."""
        return list(self(calls, worker=worker, client=client))

    @staticmethod
    def _batch(calls: Sequence[FinishJob], worker: RqWorker) -> tuple[list[str], list[EncodableT]]:
        keys = [worker.worker_key, worker.worker_executions_key]
        args: list[EncodableT] = [EVENTS_MAXLEN, worker.worker, worker.rq_finished, worker.rq_successful]
        for call in calls:
            keys += call.keys
            args += call.args
        return keys, args

    def parse(self, reply: Any, count: int) -> list[FinishOutcome]:
        """The typed answers of a batch of ``count`` calls."""
        try:
            outcomes = [FinishOutcome(text(word)) for word in reply]
        except (ValueError, TypeError):
            raise self._unexpected(reply) from None
        if len(outcomes) != count:
            raise self._unexpected(reply)
        return outcomes


START_KEYS = 3
START_ARGS = 6


class StartJobs(ScriptWrapper):
    """``start_jobs.lua``: RQ's start of a batch of jobs taken from one queue, in one script run."""

    name = "start_jobs"

    def __call__(
        self,
        starts: Sequence[RqStart],
        *,
        worker: RqWorker,
        intermediate_key: str,
        started_key: str,
        now: float,
        now_text: str,
        worker_ttl: int,
        client: redis.Redis | None = None,
    ) -> int:
        """How many jobs were started (``now``: unix seconds; ``now_text``: RQ's text of it)."""
        keys = [worker.worker_key, worker.worker_executions_key, intermediate_key, started_key]
        args: list[EncodableT] = [worker.worker, repr(now), now_text, worker.rq_busy, worker.rq_started]
        args.append(worker_ttl)
        for start in starts:
            keys += [start.job_key, start.execution_key, start.job_executions_key]
            args += [start.job_id, start.execution_id, start.execution_member, start.ttl]
            args += [repr(start.started_score), repr(start.executions_score)]
        reply = self._eval(keys, args, client)
        if not isinstance(reply, int):
            raise self._unexpected(reply)
        return reply


class TakeJobs(ScriptWrapper):
    """``take_jobs.lua``: up to ``count`` job ids moved into a queue's intermediate list at once."""

    name = "take_jobs"

    def __call__(
        self, *, queue_key: str, intermediate_key: str, count: int, client: redis.Redis | None = None
    ) -> list[str]:
        """The ids taken, in the queue's order (none when it is empty)."""
        reply = self._eval([queue_key, intermediate_key], [count], client)
        if not isinstance(reply, list):
            raise self._unexpected(reply)
        return [text(job_id) for job_id in reply]
