"""The Lua scripts of rqdag's atomic steps (``lua/*.lua``), each behind one typed wrapper.

Each script names its KEYS and ARGV at its top and documents them, with its
return value, in its header. Its wrapper (``base.ScriptWrapper``) is the only
code that knows that order: callers pass named, typed parameters and get typed
answers (:mod:`.outcomes`). :meth:`Scripts.register` registers all of them on
one client.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from rqdag.shared.store.scripts.attempt import FinishTask, HandBack, Heartbeat, StartTask, StartTasks
from rqdag.shared.store.scripts.base import EVENTS_MAXLEN, ScriptWrapper, script_source
from rqdag.shared.store.scripts.dispatch import DispatchJobs, QueuedJob
from rqdag.shared.store.scripts.jobs import (
    FinishJob,
    FinishJobs,
    RqStart,
    RqSuccess,
    RqWorker,
    StartJobs,
    TakeJobs,
)
from rqdag.shared.store.scripts.lease import AcquireLease, ReleaseLease, RenewLease, RenewLeases
from rqdag.shared.store.scripts.logs import AppendLogs
from rqdag.shared.store.scripts.notify import NotifyDriver
from rqdag.shared.store.scripts.outcomes import (
    Acquired,
    Beat,
    DecidedResult,
    FinishOutcome,
    LeaseRefusal,
    PruneOutcome,
    Start,
    StartOutcome,
    VoidOutcome,
)
from rqdag.shared.store.scripts.run import PruneRun, RecordResults, SetRunStatus, VoidAttempt
from rqdag.shared.store.scripts.timers import HoldTimer

__all__ = [
    "EVENTS_MAXLEN",
    "Acquired",
    "Beat",
    "DecidedResult",
    "FinishJob",
    "FinishJobs",
    "FinishOutcome",
    "LeaseRefusal",
    "NotifyDriver",
    "PruneOutcome",
    "QueuedJob",
    "RqStart",
    "RqSuccess",
    "RqWorker",
    "ScriptWrapper",
    "Scripts",
    "Start",
    "StartJobs",
    "StartOutcome",
    "TakeJobs",
    "VoidOutcome",
    "script_source",
]


@dataclass(frozen=True)
class Scripts:
    """Every script, registered on one client: ``scripts.finish_task(keys, task=..., ...)``."""

    acquire_lease: AcquireLease
    renew_lease: RenewLease
    renew_leases: RenewLeases
    release_lease: ReleaseLease
    set_run_status: SetRunStatus
    record_results: RecordResults
    void_attempt: VoidAttempt
    dispatch_jobs: DispatchJobs
    start_task: StartTask
    start_tasks: StartTasks
    finish_task: FinishTask
    finish_jobs: FinishJobs
    start_jobs: StartJobs
    take_jobs: TakeJobs
    heartbeat: Heartbeat
    hand_back: HandBack
    prune_run: PruneRun
    append_logs: AppendLogs
    hold_timer: HoldTimer
    notify_driver: NotifyDriver

    @classmethod
    def register(cls, client: redis.Redis) -> Scripts:
        """Register every script on ``client`` (no round trip: loaded on first use)."""
        return cls(
            acquire_lease=AcquireLease.register(client),
            renew_lease=RenewLease.register(client),
            renew_leases=RenewLeases.register(client),
            release_lease=ReleaseLease.register(client),
            set_run_status=SetRunStatus.register(client),
            record_results=RecordResults.register(client),
            void_attempt=VoidAttempt.register(client),
            dispatch_jobs=DispatchJobs.register(client),
            start_task=StartTask.register(client),
            start_tasks=StartTasks.register(client),
            finish_task=FinishTask.register(client),
            finish_jobs=FinishJobs.register(client),
            start_jobs=StartJobs.register(client),
            take_jobs=TakeJobs.register(client),
            heartbeat=Heartbeat.register(client),
            hand_back=HandBack.register(client),
            prune_run=PruneRun.register(client),
            append_logs=AppendLogs.register(client),
            hold_timer=HoldTimer.register(client),
            notify_driver=NotifyDriver.register(client),
        )
