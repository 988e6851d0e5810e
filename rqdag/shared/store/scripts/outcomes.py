"""What the scripts answer, as types: their return codes become enums and small records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from typing import NamedTuple


class LeaseRefusal(Enum):
    """Why ``acquire_lease`` gave no fence (it returns the fence when it did)."""

    HELD_ELSEWHERE = 0  # another coordinator holds the lease
    NO_RUN = -1  # the run does not exist


class Acquired(NamedTuple):
    """What ``acquire_lease`` answers when the caller holds the lease."""

    fence: int  # the fence held (> 0)
    noted: bool  # the fence was not the one the caller knew: the run's driver field names it now
    previous: str | None  # the driver named before (only when noted; None: none was)


class VoidOutcome(Enum):
    """What ``void_attempt`` did."""

    VOIDED = 1  # the attempt is void now
    MOVED_ON = 0  # it is no longer in the state given (it started or finished meanwhile)
    LEASE_LOST = -1  # the caller does not hold the lease: nothing written


class DecidedResult(NamedTuple):
    """One result the coordinator decided itself, for ``record_results``."""

    task: str
    result: bytes  # the TaskResult JSON
    status: str  # its status (for the event)


class StartOutcome(StrEnum):
    """What ``start_task`` answered first; the value is the script's own word."""

    OK = "ok"  # the attempt is now running
    GONE = "gone"  # the run does not exist
    DONE = "done"  # the task already succeeded
    STALE = "stale"  # the token is not the current queued attempt
    CANCELLED = "cancelled"  # the run is being cancelled


@dataclass(frozen=True)
class Start:
    """The answer of ``start_task``."""

    outcome: StartOutcome
    params: bytes = b"{}"  # the run's params JSON (when OK)
    inputs: tuple[bytes | None, ...] = ()  # each dependency's stored result JSON, in order (when OK)
    cancel_reason: str = ""  # when CANCELLED


class FinishOutcome(StrEnum):
    """What ``finish_task`` did; the value is the script's own word."""

    WRITTEN = "ok"  # the result is written (or kept for the retry)
    STALE = "stale"  # the token is no longer current: refused (and logged as an event)


@dataclass(frozen=True)
class Beat:
    """The answer of ``heartbeat``."""

    alive: bool  # False: the attempt is no longer current, the worker should stop it
    cancel_reason: str = ""  # non-empty when the run is being cancelled


class PruneOutcome(IntEnum):
    """What ``prune_run`` did with one run."""

    DELETED = 1
    KEPT = 0  # it changed meanwhile (resumed, finished later): nothing deleted
    GONE = -1  # its meta was gone already
